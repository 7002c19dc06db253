"""No open relay for in-dialog requests (issue 14 point 3): the reference
config forwards an in-dialog request only where our Record-Route can have
led: to a pool member (by the pair of the Route, or by the Request-URI), to a
Feature Server, from a member or Feature Server toward an endpoint, or to a
phone over its flow (test_sticky*.py). Everything else gets 403 and a log
line; a UDP listener on a "foreign" loopback address must receive nothing."""

import socket
import time

import pytest

import harness
import ha_util as hu
from ha_util import wait_pool

REFUSED = r"refused: neither from nor to the SIP Server pool"


def in_dialog(sock, k, method, ruri, route, wait=2.0):
    """Send an in-dialog request (To with a tag, Route) from a bound UDP
    socket; returns the first line of the final reply, or None (ACK: None
    after a short wait)."""
    addr, port = sock.getsockname()
    callid = "dlg-%f@%s" % (time.time(), addr)
    msg = ("%s %s SIP/2.0\r\n"
           "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%d\r\n"
           "From: <sip:1001@%s>;tag=a1\r\n"
           "To: <%s>;tag=b1\r\n"
           "Call-ID: %s\r\n"
           "CSeq: 2 %s\r\n"
           "Route: %s\r\n"
           "Contact: <sip:c@%s:%d>\r\n"
           "Max-Forwards: 70\r\n"
           "Content-Length: 0\r\n\r\n"
           % (method, ruri, addr, port, int(time.time() * 1e6), addr, ruri,
              callid, method, route, addr, port))
    return _send(sock, k, msg, callid, wait)


def _send(sock, k, msg, callid, wait):
    sock.sendto(msg.encode(), (k.address, k.port))
    if msg.startswith("ACK "):
        time.sleep(0.3)     # no reply to an ACK: time for it to be relayed
        return None
    deadline = time.monotonic() + wait
    sock.settimeout(0.1)
    while time.monotonic() < deadline:
        try:
            data, _ = sock.recvfrom(65535)
        except socket.timeout:
            continue
        text = data.decode(errors="replace")
        if callid in text and not text.startswith("SIP/2.0 1"):
            return text.split("\r\n", 1)[0]
    return None


def peer_in_dialog(peer, k, method, ruri, route, wait=2.0):
    """The same from a Peer's own socket (a SIP Server or Feature Server
    sending from its address and port)."""
    callid = "pdlg-%f@%s" % (time.time(), peer.address)
    msg = ("%s %s SIP/2.0\r\n"
           "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%d\r\n"
           "From: <sip:sips@%s>;tag=s1\r\n"
           "To: <%s>;tag=e1\r\n"
           "Call-ID: %s\r\n"
           "CSeq: 3 %s\r\n"
           "Route: %s\r\n"
           "Contact: <sip:sips@%s:%d>\r\n"
           "Max-Forwards: 70\r\n"
           "Content-Length: 0\r\n\r\n"
           % (method, ruri, peer.address, peer.port, int(time.time() * 1e6),
              peer.address, ruri, callid, method, route, peer.address,
              peer.port))
    peer.send(msg, (k.address, k.port))
    got = peer.wait_for(lambda m: m.is_reply and m.call_id == callid
                        and m.status >= 200, timeout=wait, fail=False)
    return got[0].first if got else None


@pytest.fixture
def env(tmp_path, kamailio_factory, peer_factory):
    """One pair (primary, backup), one Feature Server, a foreign host and an
    endpoint, all UDP listeners that answer 200 and record what they get."""
    e = type("Env", (), {})()
    e.pri, e.bak, e.fs = peer_factory(), peer_factory(), peer_factory()
    e.foreign = peer_factory()
    e.endpoint = peer_factory()
    path = hu.write_pool(tmp_path / "pool.xml",
                         [("SIPS_A", e.pri.uri, e.bak.uri, None)],
                         fs=[("FS1", e.fs.uri, None)])
    e.k = hu.start_proxy(kamailio_factory, path)
    wait_pool(e.k, lambda p: p["SIPS_A"]["state"] == "up"
              and p["SIPS_A"]["active"] == "primary"
              and p["_fs"]["FS1"]["state"] == "active", what="pool up")
    e.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    e.sock.bind((harness.next_address(), 0))    # a phone, not in the pool
    yield e
    e.sock.close()


def refused_cases(e):
    k, f = e.k, e.foreign
    me = k.address
    fru = "sip:victim@%s:5060" % f.address
    mru = "sip:sips@%s:5060" % e.pri.address
    return [
        # a valid pair with a foreign Request-URI
        ("pair+foreign-ruri", fru, "<sip:%s;lr;gha=SIPS_A*1001>" % me),
        # a Route to a foreign host carrying a pair parameter
        ("foreign-route+pair", fru, "<sip:%s:5060;lr;gha=SIPS_A>" % f.address),
        ("foreign-route+pair, member ruri", mru,
         "<sip:%s:5060;lr;gha=SIPS_A>" % f.address),
        # ours, then a foreign Route (the next hop) with the pair
        ("ours+foreign-route", mru,
         "<sip:%s;lr>,<sip:%s:5060;lr;gha=SIPS_A>" % (me, f.address)),
        # our Route without "gha" and a foreign Request-URI
        ("plain-rr+foreign-ruri", fru, "<sip:%s;lr>" % me),
        # a Feature Server's port on another host, a member's address on
        # another port
        ("member host, other port", "sip:x@%s:5080" % e.pri.address,
         "<sip:%s;lr>" % me),
    ]


@pytest.mark.parametrize("method", ["BYE", "INVITE", "MESSAGE", "ACK"])
def test_in_dialog_open_relay_refused(env, method):
    """From an endpoint (not a member): every case that would leave the pool
    is refused (403; ACK: dropped) and logged; the foreign host, the
    members and the Feature Server receive nothing."""
    e = env
    for name, ruri, route in refused_cases(e):
        status = in_dialog(e.sock, e.k, method, ruri, route)
        if method == "ACK":
            assert status is None, (name, status)
        else:
            assert status and status.startswith("SIP/2.0 403"), (name, status)
    # a canary through the same proxy: the listeners are alive and reachable
    status = in_dialog(e.sock, e.k, "OPTIONS", "sip:sips@%s:5060"
                       % e.pri.address, "<sip:%s;lr;gha=SIPS_A>" % e.k.address)
    assert status and status.startswith("SIP/2.0 200"), status
    time.sleep(0.3)     # what is tested: nothing relayed in that time
    assert e.foreign.received == [], e.foreign.received
    for p in (e.pri, e.bak, e.fs):
        assert not p.requests(method), (method, p.requests(method))
    log = e.k.log_text()
    assert log.count(REFUSED) >= 4, log[-3000:]
    e.k.wait_log(r"in-dialog %s from [\d.]+:\d+ refused: neither from nor to "
                 r"the SIP Server pool \(R-URI 'sip:victim@%s:5060', next "
                 r"hop ''\); not forwarded" % (method, e.foreign.address))
    st = e.k.statistics("genesys_ha:")
    assert st["route_refused"] == len(refused_cases(e)), st


def test_in_dialog_legit_flows_still_forwarded(env):
    """What our Record-Route can have led to still works: to the pair's
    active member (by pair or by the Request-URI), to the Feature Server, and
    from a member or the Feature Server toward an endpoint."""
    e = env
    k, me = e.k, e.k.address
    mru = "sip:sips@%s:5060" % e.pri.address
    epru = "sip:ep@%s:%d" % (e.endpoint.address, e.endpoint.port)
    # endpoint -> member, with the pair, then with a plain Record-Route
    # (a dialog set up toward a phone over its flow: record_route())
    for route in ("<sip:%s;lr;gha=SIPS_A*1001>" % me, "<sip:%s;lr>" % me):
        status = in_dialog(e.sock, k, "BYE", mru, route)
        assert status and status.startswith("SIP/2.0 200"), (route, status)
    assert len(e.pri.requests("BYE")) == 2
    # endpoint -> the backup named by the Request-URI, pair known: the
    # pair's active member (primary)
    status = in_dialog(e.sock, k, "INFO", "sip:sips@%s:5060" % e.bak.address,
                       "<sip:%s;lr;gha=SIPS_A>" % me)
    assert status and status.startswith("SIP/2.0 200"), status
    assert len(e.pri.requests("INFO")) == 1
    # endpoint -> Feature Server (MWI re-SUBSCRIBE: plain record_route())
    status = in_dialog(e.sock, k, "SUBSCRIBE", "sip:fs@%s:5060"
                       % e.fs.address, "<sip:%s;lr>" % me)
    assert status and status.startswith("SIP/2.0 200"), status
    assert len(e.fs.requests("SUBSCRIBE")) == 1
    # member -> endpoint (BYE, re-INVITE, REFER), with the pair and plain
    for method in ("BYE", "INVITE", "REFER"):
        status = peer_in_dialog(e.pri, k, method, epru,
                                "<sip:%s;lr;gha=SIPS_A*2000>" % me)
        assert status and status.startswith("SIP/2.0 200"), (method, status)
    # the backup -> endpoint
    status = peer_in_dialog(e.bak, k, "MESSAGE", epru, "<sip:%s;lr>" % me)
    assert status and status.startswith("SIP/2.0 200"), status
    # Feature Server -> endpoint (MWI NOTIFY to a UDP phone)
    status = peer_in_dialog(e.fs, k, "NOTIFY", epru, "<sip:%s;lr>" % me)
    assert status and status.startswith("SIP/2.0 200"), status
    for m, n in (("BYE", 1), ("INVITE", 1), ("REFER", 1), ("MESSAGE", 1),
                 ("NOTIFY", 1)):
        assert len(e.endpoint.requests(m)) == n, (m, e.endpoint.received)
    assert REFUSED not in k.log_text()
    assert e.foreign.received == []
