"""Log events of seed 000 around start-up (issue 13): 40004 only once the
listeners are open, 40006 for a SIP listener and 40007 for the management
listener that cannot be opened (the proxy then never says 40004)."""

import re
import socket

import pytest

import harness
import ha_util as hu


@pytest.fixture
def peer(peer_factory):
    return peer_factory()


def proxy(tmp_path, peer, **defines):
    pool = hu.write_pool(tmp_path / "pool.xml",
                         [("SIPS_A", peer.uri, "sip:%s:5060" % harness.next_address(), None)])
    d = {"POOL_FILE": '"%s"' % pool}
    d.update(defines)
    return harness.Kamailio(tmp_path / "proxy", cfg_text=hu.reference_cfg(), defines=d)


def start_fails(k):
    with pytest.raises(harness.HarnessError):
        k.start()
    k.stop(check=False)
    return k.log_text()


def test_40004_after_the_listeners(tmp_path, peer):
    k = proxy(tmp_path, peer)
    k.start()
    try:
        m = k.wait_log(r" 0\((\d+)\) NOTICE: genesys_ha \[gha_state\.c:\d+\]: "
                       r"gha_state_log_initialized\(\): 40004 SPR_PROXY_INITIALIZED: "
                       r".*serving SIP Server 'SIPS_A'")
        # logged by the main process after it forked the workers
        assert int(m.group(1)) == k.proc.pid
        log = k.log_text()
        assert log.count("40004 SPR_PROXY_INITIALIZED") == 1
        assert "40006" not in log and "40007" not in log
    finally:
        k.stop()


def start_fails_port_taken(k, kind, port):
    """start_fails(k) while another socket holds k's address and port
    (kind "udp" or "tcp", listening); returns the log"""
    s = socket.socket(socket.AF_INET,
                      socket.SOCK_DGRAM if kind == "udp" else socket.SOCK_STREAM)
    s.bind((k.address, port))
    if kind == "tcp":
        s.listen(1)
    try:
        return start_fails(k)
    finally:
        s.close()


@pytest.mark.parametrize("kind", ["udp", "tcp"])
def test_40006_sip_listener_taken(tmp_path, peer, kind):
    """A SIP port already taken: 40006 names the listener, no 40004."""
    k = proxy(tmp_path, peer)
    log = start_fails_port_taken(k, kind, 5060)
    assert re.search(r"ERROR: genesys_ha .*40006 SPR_SIP_LISTENER_CANNOT_START: "
                     r"SIP listener %s:%s:5060 cannot be opened"
                     % (kind, re.escape(k.address)), log), log[-3000:]
    assert "40004" not in log
    assert "40007" not in log


def test_40007_management_listener_taken(tmp_path, peer):
    """The HTTP management listener's port taken: 40007, no 40004."""
    k = proxy(tmp_path, peer, WITH_HTTP_MGMT=None)
    k.defines["MGMT_LISTEN"] = "tcp:%s:8080" % k.address
    log = start_fails_port_taken(k, "tcp", 8080)
    assert re.search(r"40007 PR_MGMT_LISTENER_CANNOT_START: the management "
                     r"listener tcp:%s:8080 cannot be opened"
                     % re.escape(k.address), log), log[-3000:]
    assert "40004" not in log and "40006" not in log


def test_no_listener_event_when_a_module_fails(tmp_path, peer):
    """A module initialized after genesys_ha refuses to start: that is not a
    listener (no 40006/40007), and there is no 40004."""
    k = proxy(tmp_path, peer, REGISTRAR_DEFAULT_TIMEOUT="-5")
    log = start_fails(k)
    assert "registrar_default_timeout" in log, log[-2000:]
    assert "40006" not in log and "40007" not in log and "40004" not in log
