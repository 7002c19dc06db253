"""pytest fixtures for the system tests (see harness.py)."""

import pytest

import harness


@pytest.fixture
def workdir(tmp_path):
    return tmp_path


@pytest.fixture
def kamailio_factory(tmp_path):
    """start(cfg_text=..., defines=...) -> running Kamailio; all are stopped at
    the end, and the test fails when a log shows a crash, BUG or load error."""
    started = []

    def start(name="kamailio", **kw):
        k = harness.Kamailio(tmp_path / name, **kw)
        started.append(k)
        return k.start()

    yield start
    errors = []
    for k in started:
        try:
            k.stop(check=True)
        except harness.HarnessError as e:
            errors.append(str(e))
    if errors:
        pytest.fail("\n\n".join(errors), pytrace=False)


@pytest.fixture
def kamailio(kamailio_factory):
    """The reference etc/kamailio.cfg, running on its own loopback address."""
    return kamailio_factory()


@pytest.fixture
def sipp_factory(tmp_path):
    """make(scenario, name, ...) -> harness.Sipp (not started); all killed at the end."""
    made = []

    def make(scenario, name, **kw):
        s = harness.Sipp(tmp_path, scenario, name, **kw)
        made.append(s)
        return s

    yield make
    for s in made:
        s.kill()


@pytest.fixture
def peer_factory():
    """make(cls=ha_util.Peer, **kw) -> a started SIP peer (sip_peer.SipPeer
    or a subclass: a scriptable SIP Server or user agent on its own loopback
    address); every one is stopped at the end (stop() is idempotent: a test
    may have stopped some itself)."""
    import ha_util
    made = []

    def make(cls=None, *args, **kw):
        p = (cls or ha_util.Peer)(*args, **kw)
        p.start()
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()
