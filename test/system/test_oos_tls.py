"""genesys_oos probing a TLS target that really answers: a Python `ssl`
server on its own loopback address reads the OPTIONS probes off the TLS
stream and answers them, kamailio (with the tls module) probes
sip:<addr>:<port>;transport=tls, and the states are read over
`kamcmd genesys_oos.list`."""

import re
import socket

import pytest

import harness
from sticky_env import tls_cfg
from sip_peer import SipPeer, wait_until
from test_oos_util import make_cfg, target, wait_state
from tls_ua import Certs

FAST = {"oos_check": 1, "oos_force": 1, "oos_timeout": 1000}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("oos-tls-certs"))


class TlsResponder(SipPeer):
    """TLS SIP peer (sip_peer.SipPeer): answers every OPTIONS with `code`
    and nothing else; `probes`: how many OPTIONS it answered."""

    reason = "Test Reply"

    def __init__(self, certs, code=200, address=None, port=5061):
        super().__init__("tls", address=address, port=port, certs=certs,
                         rules={"OPTIONS": code, "*": None})

    @property
    def probes(self):
        with self._lock:
            return self.replies_sent["OPTIONS"]


@pytest.fixture
def tls_responders(certs, peer_factory):
    return lambda **kw: peer_factory(TlsResponder, certs, **kw)


def start_tls_kamailio(kamailio_factory, tmp_path, certs, params):
    """make_cfg's kamailio plus the tls module (loaded before genesys_oos)
    and a TLS listen socket, with a client profile that does not verify."""
    tcfg = tmp_path / "tls.cfg"
    tcfg.write_text(tls_cfg(certs))
    cfg = make_cfg(params, tls=True)
    address = harness.next_address()
    return kamailio_factory(cfg_text=cfg, address=address,
                            defines={"LISTEN_TLS": "tls:%s:5061" % address,
                                     "TLS_CFG": '"%s"' % tcfg})


def port_listening(address, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect((address, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_tls_target_answering_is_active_then_down_when_gone(
        kamailio_factory, tls_responders, tmp_path, certs):
    """A TLS target whose server answers OPTIONS over TLS with 200 is
    ACTIVE (last code 200); once the server is gone (port closed) the
    next probe's connect is refused and the target goes DOWN quickly."""
    srv = tls_responders(code=200)
    k = start_tls_kamailio(kamailio_factory, tmp_path, certs,
                           dict(FAST, target=srv.uri))
    _, row = wait_state(k, srv.uri, "active", timeout=6)
    assert row["last_code"] == 200, row
    # the replies really came over TLS from our server, and keep coming
    assert srv.handshakes >= 1 and srv.probes >= 1, (srv.handshakes, srv.probes)
    n = srv.probes
    wait_until(lambda: srv.probes >= n + 1, 2.5, "one more probe answered")
    assert srv.probes >= n + 1, (n, srv.probes)
    row = target(k, srv.uri)
    assert row["state"] == "active" and row["last_code"] == 200, row

    srv.stop()
    assert not port_listening(srv.address, srv.port)
    took, row = wait_state(k, srv.uri, "down", timeout=5)
    assert row["last_reason"] == "transport", row
    assert row["transport_errors"] >= 1, row
    # next probe at most oos_check (1s) later, refused in one round trip
    assert took < 3.0, "TLS target took %.2fs to go down" % took
    assert re.search(r"target %s state active -> down" % re.escape(srv.uri),
                     k.log_text()), k.log_text()[-3000:]


def test_tls_target_answering_503_is_inactive(
        kamailio_factory, tls_responders, tmp_path, certs):
    """The same TLS server answering 503: INACTIVE with last code 503."""
    srv = tls_responders(code=503)
    k = start_tls_kamailio(kamailio_factory, tmp_path, certs,
                           dict(FAST, target=srv.uri))
    _, row = wait_state(k, srv.uri, "inactive", timeout=6)
    assert row["last_code"] == 503, row
    assert srv.probes >= 1, srv.probes
