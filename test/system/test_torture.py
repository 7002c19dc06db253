"""Malformed and unusual SIP (test/torture/, RFC 4475 categories) through the
reference config with all modules loaded: nothing crashes, valid messages are
served, invalid ones get 400 or are dropped, and calls still work after."""

import socket
import time

import pytest

import harness

TORTURE = harness.TOP / "test" / "torture"
MESSAGES = sorted(TORTURE.glob("*.sip"))


def render(path, proxy, peer, transport="UDP"):
    text = path.read_text().replace("@ADDR@", proxy).replace("@PEER@", peer)
    if transport != "UDP":
        text = text.replace("SIP/2.0/UDP", "SIP/2.0/" + transport)
    if "-rawlf" not in path.name:
        text = text.replace("\n", "\r\n")
    return text.encode("latin-1")


def collect_udp(sock, seconds):
    got = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data, _ = sock.recvfrom(65535)
        except socket.timeout:
            break
        got.append(data.decode("latin-1"))
        # a final response or a relayed request ends the exchange
        first = got[-1].split("\r\n", 1)[0]
        if not (first.startswith("SIP/2.0 1")):
            break
    return got


@pytest.fixture(scope="module")
def proxy(tmp_path_factory):
    k = harness.Kamailio(tmp_path_factory.mktemp("torture") / "k")
    k.start()
    yield k
    k.stop(check=True)


@pytest.mark.parametrize("msg", MESSAGES, ids=[m.stem for m in MESSAGES])
def test_torture_udp(proxy, msg):
    peer = harness.next_address()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((peer, 5999))
    try:
        s.sendto(render(msg, proxy.address, peer), (proxy.address, 5060))
        got = collect_udp(s, 1.5)
    finally:
        s.close()
    finals = [g for g in got if not g.startswith("SIP/2.0 1")]
    if msg.name.startswith("valid-"):
        assert finals, "no answer to a valid message %s" % msg.name
        assert not finals[-1].startswith("SIP/2.0 400"), finals[-1]
    else:
        for g in finals:
            assert g.startswith("SIP/2.0 4"), \
                "invalid message %s was not refused:\n%s" % (msg.name, g)
    # still alive
    proxy.rpc("core.uptime")


def test_torture_tcp_then_call(proxy, sipp_factory):
    """Every message over its own TCP connection, then a normal call."""
    for msg in MESSAGES:
        peer = harness.next_address()
        c = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        c.bind((peer, 0))
        c.settimeout(2)
        c.connect((proxy.address, 5060))
        c.sendall(render(msg, proxy.address, peer, "TCP"))
        try:
            c.recv(65535)
        except (socket.timeout, ConnectionResetError):
            pass
        c.close()
    # garbage that is not SIP at all
    for junk in (b"\x00" * 2048, b"\r\n\r\n" * 100, bytes(range(256)) * 8):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.sendto(junk, (proxy.address, 5060))
        u.close()
    proxy.rpc("core.uptime")

    uas = sipp_factory("uas_call.xml", "uas").start()
    uac = sipp_factory("uac_call.xml", "uac", remote=proxy.address + ":5060",
                       extra_args=["-key", "callee", "%s:%d" % (uas.address, uas.port)])
    r = uac.run()
    assert r.rc == 0 and r.successful == 1, r.screen
    assert uas.wait().successful == 1
    assert not proxy.failures(), proxy.failures()
