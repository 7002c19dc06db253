"""genesys_ha rr_pool_name (issue 16): Record-Route by the pool's name.

Three proxies run the reference etc/kamailio.cfg with the same pool file and
POOL_RR_NAME: the Record-Route of a dialog names the pool's FQDN, which
every proxy takes as its own (alias), so any proxy routes the dialog's
in-dialog requests by the pair id in the Route.  The user agents follow
RFC 3263: they resolve the name (the test's own table, see pool_ua.py) to
the three proxies and try the next address after an ICMP error or a
timeout.  Calls set up through proxy A survive A's SIGKILL: every BYE and
re-INVITE, from either side, reaches its destination through another proxy.
Without the option the Record-Route names the proxy itself, as before."""

import os
import re
import signal
import threading
import time

import pytest

import harness
from ha_util import (Peer, reference_cfg, start_proxy, udp_request,
                     wait_pool, write_pool)
from pool_ua import PoolUA, Resolver, record_routes
from tls_ua import build, response, uri_of

POOL = "sip-pool.example.test"
PAIR = "ss1"


def sigkill(k):
    """SIGKILL every process of the proxy: no shutdown at all"""
    assert not k.failures(), k.failures()
    pgid = k.proc.pid
    os.killpg(pgid, signal.SIGKILL)
    k.proc.wait()
    k.proc = None   # nothing left for the fixture to stop or check
    # every child gone too (their sockets closed: ICMP port unreachable)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.01)
    raise AssertionError("processes of the killed proxy still exist")


class Env:
    pass


def make_env(kamailio_factory, tmp_path, nproxies=3, pool_rr=True,
             extra=None, cfg_text=None):
    e = Env()
    e.ss = PoolUA(harness.next_address(), user="sipserver")
    e.backup = Peer()
    e.ss.start()
    e.backup.start()
    pool = write_pool(tmp_path / "pool.xml",
                      [(PAIR, "sip:%s:5060" % e.ss.address, e.backup.uri,
                        None)])
    defines = {"POOL_RR_NAME": '"%s"' % POOL} if pool_rr else {}
    defines.update(extra or {})
    e.proxies = [start_proxy(kamailio_factory, pool, name="proxy%d" % i,
                             defines=defines, cfg_text=cfg_text)
                 for i in range(nproxies)]
    for k in e.proxies:
        wait_pool(k, lambda p: p[PAIR]["state"] == "up", what="pair up")
    # the pool's A records: proxy A first, as a resolver may return them
    e.resolver = Resolver({POOL: [k.address for k in e.proxies]})
    e.ss.resolver = e.resolver
    e.phone = PoolUA(harness.next_address(), user="1001", resolver=e.resolver)
    e.phone.start()
    return e


@pytest.fixture
def env(kamailio_factory, tmp_path):
    e = make_env(kamailio_factory, tmp_path)
    yield e
    e.phone.stop()
    e.ss.stop()
    e.backup.stop()


def via_a(e):
    return "sip:%s:%d" % (e.proxies[0].address, e.proxies[0].port)


def test_record_route_names_the_pool(env):
    """the SIP Server and the phone see one Record-Route naming the pool
    (not the proxy), with the pair id; in-dialog requests go through it"""
    a = env.proxies[0]
    d, ok, _ = env.phone.invite("sip:2000@%s" % POOL, via_a(env))
    assert d is not None, ok
    inv = env.ss.wait_got("INVITE", d.call_id)[0]
    rr = record_routes(inv)
    assert rr == ["%s:5060;lr;gha=%s*1001" % ("sip:" + POOL,
                                                             PAIR)], rr
    assert a.address not in inv.hdr("Record-Route")
    assert d.route_set == rr
    assert env.ss.wait_got("ACK", d.call_id)
    bye, att = env.phone.request(d, "BYE")
    assert bye is not None and bye.status == 200, att
    assert env.ss.wait_got("BYE", d.call_id)
    # the name is the proxy's own: an OPTIONS to it (SIP Server's
    # oos-check of its sip-outbound-proxy DN, whose contact is the pool) is
    # answered by the proxy, not relayed
    first, _ = udp_request(env.proxies[1], "OPTIONS", "sip:%s:5060" % POOL)
    assert first == "SIP/2.0 200 OK", first
    assert not [r for r in env.ss.requests
                if r.method == "OPTIONS" and POOL in r.ruri]
    # every proxy's log stayed clean (no socket mismatch warning either)
    for k in env.proxies:
        assert "Record-Route by the pool's name '%s'" % POOL in k.log_text()
        assert "no socket found" not in k.log_text()


def test_calls_survive_proxy_death(env):
    """20 calls through proxy A; A is SIGKILLed; every call is hung up
    (10 by the phone, 10 by the SIP Server), two are re-INVITEd first (one
    from each side): 100 % of the requests reach the other side through
    proxy B or C, after the ICMP error of A"""
    a, others = env.proxies[0], env.proxies[1:]
    calls = []
    for i in range(20):
        d, ok, att = env.phone.invite("sip:2000@%s" % POOL, via_a(env))
        assert d is not None, (ok, att)
        assert [x.addr[0] for x in att] == [a.address]
        calls.append(d)
    # the SIP Server side of every dialog, and the ACKs through A
    ss_side = {}
    for d in calls:
        assert env.ss.wait_got("ACK", d.call_id, 1), d.call_id
        ss_side[d.call_id] = env.ss.dialogs[d.call_id]
        assert ss_side[d.call_id].route_set[0].startswith("sip:%s:" % POOL)

    sigkill(a)

    other_addrs = {k.address for k in others}
    reached = 0
    # a re-INVITE from each side first
    ok, att = env.phone.request(calls[0], "INVITE")
    assert ok is not None and ok.status == 200, att
    assert att[0].addr[0] == a.address and att[0].outcome == "icmp", att
    assert att[-1].addr[0] in other_addrs, att
    assert env.ss.wait_got("INVITE", calls[0].call_id, calls[0].cseq)
    assert env.ss.wait_got("ACK", calls[0].call_id, calls[0].cseq)
    sd = ss_side[calls[1].call_id]
    ok, att = env.ss.request(sd, "INVITE")
    assert ok is not None and ok.status == 200, att
    assert att[-1].addr[0] in other_addrs, att
    assert env.phone.wait_got("INVITE", sd.call_id, sd.cseq)
    assert env.phone.wait_got("ACK", sd.call_id, sd.cseq)

    failed = []
    for i, d in enumerate(calls):
        if i % 2 == 0:
            bye, att = env.phone.request(d, "BYE")
            got = env.ss.wait_got("BYE", d.call_id)
        else:
            sd = ss_side[d.call_id]
            bye, att = env.ss.request(sd, "BYE")
            got = env.phone.wait_got("BYE", d.call_id)
        if bye is not None and bye.status == 200 and got \
                and att[0].outcome == "icmp" \
                and att[-1].addr[0] in other_addrs:
            reached += 1
        else:
            failed.append((i, bye and bye.first, att, len(got)))
    assert reached == 20, failed
    # the proxies that took over: no warning about the pool's Route
    for k in others:
        log = k.log_text()
        assert "refused" not in log and "no socket found" not in log


def test_unknown_pair_with_pool_name_refused(env):
    """a Route naming the pool with a pair this proxy's pool file does not
    have is refused as before (403): the pool files must agree"""
    b = env.proxies[1]
    route = "<sip:%s:5060;transport=udp;lr;gha=nosuchpair*1001>" % POOL
    first, _ = udp_request(b, "BYE", "sip:sipserver@%s:5060" % env.ss.address,
                           route=route)
    assert first == "SIP/2.0 403 Unknown SIP Server pair in Route", first
    assert not env.ss.got("BYE", None)
    b.wait_log(r"in-dialog BYE from .* refused: unknown SIP Server pair "
               r"'nosuchpair'")
    assert b.statistics("genesys_ha:")["route_refused"] == 1


def test_option_off_names_the_proxy(kamailio_factory, tmp_path):
    """without POOL_RR_NAME the Record-Route names the proxy's own address,
    as before, and the pool's name is nobody's"""
    e = make_env(kamailio_factory, tmp_path, nproxies=1, pool_rr=False)
    try:
        a = e.proxies[0]
        d, ok, _ = e.phone.invite("sip:2000@%s" % a.address, via_a(e))
        assert d is not None, ok
        inv = e.ss.wait_got("INVITE", d.call_id)[0]
        rr = record_routes(inv)
        assert rr == ["sip:%s;lr;gha=%s*1001" % (a.address, PAIR)], rr
        route = "<sip:%s:5060;lr;gha=%s*1001>" % (POOL, PAIR)
        # a Route naming the pool is not ours: loose_route() sends the BYE
        # toward that name (which does not resolve: .test is reserved)
        first, _ = udp_request(a, "BYE", "sip:sipserver@%s:5060"
                               % e.ss.address, route=route, timeout=2)
        assert first is None or not first.startswith("SIP/2.0 200"), first
        assert not re.search(r"Record-Route by the pool's name", a.log_text())
    finally:
        e.phone.stop()
        e.ss.stop()
        e.backup.stop()


def test_double_record_route_transport_change(env):
    """SIP Server (UDP) -> gateway (TCP) through A: two Record-Routes (the
    transport changes), both naming the pool, each with its own transport,
    the pair id in both.  After A's SIGKILL, the SIP Server's BYE (UDP) and
    the gateway's BYE (TCP: A refuses the connection) go through B or C,
    which take both Routes as their own"""
    from pool_ua import TcpUA
    a = env.proxies[0]
    gw = TcpUA(harness.next_address(), resolver=env.resolver)
    gw.start()
    try:
        calls = []
        for i in range(2):
            d, ok, att = env.ss.invite("sip:2000@%s:5060;transport=tcp"
                                       % gw.address, via_a(env),
                                       own_socket=True)
            assert d is not None, (ok, att)
            calls.append(d)
            inv = gw.wait_got("INVITE", d.call_id)[0]
            rr = record_routes(inv)
            assert rr == ["sip:%s:5060%s;r2=on;lr;gha=%s*2000"
                          % (POOL, t, PAIR)
                          for t in (";transport=tcp", "")], rr
            assert d.route_set == list(reversed(rr))
            assert gw.wait_got("ACK", d.call_id), "ACK through A"
        sigkill(a)
        others = {k.address for k in env.proxies[1:]}
        # the SIP Server hangs up the first call
        bye, att = env.ss.request(calls[0], "BYE")
        assert bye is not None and bye.status == 200, att
        assert att[0].outcome == "icmp" and att[-1].addr[0] in others, att
        assert gw.wait_got("BYE", calls[0].call_id)
        # the gateway hangs up the second one (its side of the dialog)
        gd = gw.dialogs[calls[1].call_id]
        bye, att = gw.request(gd, "BYE")
        assert bye is not None and bye.status == 200, att
        assert att[0].outcome == "refused" and att[-1].addr[0] in others, att
        assert env.ss.wait_got("BYE", calls[1].call_id)
    finally:
        gw.stop()


def in_thread(fn, *args, **kw):
    out = []
    t = threading.Thread(target=lambda: out.append(fn(*args, **kw)),
                         daemon=True)
    t.start()
    return t, out


def phone_call(ph, call_id):
    """the TCP phone calls through its connection; returns the 200"""
    inv = build("INVITE sip:2000@%s SIP/2.0" % POOL, [
        ("Via", ph.via()), ("Max-Forwards", "70"),
        ("From", "<sip:1001@%s>;tag=ph-%s" % (POOL, call_id)),
        ("To", "<sip:2000@%s>" % POOL), ("Call-ID", call_id),
        ("CSeq", "1 INVITE"), ("Contact", "<%s>" % ph.contact_uri())])
    ph.send(inv)
    ok = ph.recv(5, want=lambda m: m.is_reply and m.status >= 200
                 and m.hdr("Call-ID") == call_id)
    assert ok.status == 200, ok.text
    return ok


def ss_bye_to_phone(env, ph, call_id, answer=True):
    """the SIP Server hangs up call_id; the phone answers the BYE if it
    gets it; returns (final reply or None, attempts, BYE the phone got)"""
    t, res = in_thread(env.ss.request, env.ss.dialogs[call_id], "BYE")
    bye = None
    if answer:
        bye = ph.recv(5, want=lambda m: not m.is_reply and m.method == "BYE"
                      and m.hdr("Call-ID") == call_id)
        ph.send(response(bye, 200, "OK"))
    t.join(15)
    reply, att = res[0]
    return reply, att, bye


def test_sticky_phone_keeps_its_connection_holder(kamailio_factory,
                                                   tmp_path):
    """a TCP phone registered through A (a sticky flow, genesys_tlssticky)
    calls a SIP Server over UDP: double Record-Route, the SIP Server's side
    names the pool, the phone's side names A (the proxy holding its
    connection), both with the flow token.  The SIP Server's BYE reaches
    the phone through A, or through B, which relays it once to A (the token
    names A's relay address); the phone's BYE goes over its connection to
    A.  With A dead, B answers 430 (flow failed) quickly.  A call from the
    SIP Server to the phone's registered Contact names A on both sides, as
    before."""
    from tls_ua import StreamUA
    e = make_env(kamailio_factory, tmp_path,
                 extra={"STICKY_RELAY_TIMER_NON_INVITE": "1000"})
    a, b = e.proxies[0], e.proxies[1]
    ph = StreamUA(harness.next_address(), a.address, 5060, tls=False)
    try:
        ph.register(POOL, expires=600)
        ok = ph.recv(5, want=lambda m: m.is_reply and m.method == "REGISTER")
        assert ok.status == 200, ok.text
        reg = [r for r in e.ss.requests if r.method == "REGISTER"][-1]
        contact = uri_of(reg.contacts()[0])
        assert contact.startswith("sip:1001@%s" % a.address) \
            and ";gts=" in contact, contact

        calls = ["tcpcall%d-%s" % (i, ph.local_port) for i in range(4)]
        for call_id in calls:
            phone_call(ph, call_id)
        got = e.ss.wait_got("INVITE", calls[0])[0]
        rr = record_routes(got)
        assert len(rr) == 2, rr
        assert rr[0].startswith("sip:%s:5060;transport=udp;r2=on;lr;gha=%s*1001"
                                ";gts=" % (POOL, PAIR)), rr
        assert rr[1].startswith("sip:%s;transport=tcp;r2=on;lr;gha=%s*1001;"
                                "gts=" % (a.address, PAIR)), rr

        # the SIP Server hangs up call 0 through A (its resolver's first)
        reply, att, _ = ss_bye_to_phone(e, ph, calls[0])
        assert reply is not None and reply.status == 200, att
        assert [x.addr[0] for x in att] == [a.address], att
        # ... and call 1 through B (B first): B relays it to A
        e.ss.resolver = Resolver({POOL: [b.address, a.address]})
        reply, att, bye = ss_bye_to_phone(e, ph, calls[1])
        assert reply is not None and reply.status == 200, att
        assert [x.addr[0] for x in att] == [b.address], att
        assert not bye.hdrs("Route"), bye.text
        b.wait_log(r"BYE from .* for a flow of another proxy \(tcp "
                   r"%s:5060\): relayed to that proxy" % re.escape(a.address))
        # A's token in a Route naming B's own address (not the pool's
        # name): refused as before, never relayed
        tok = re.search(r";gts=([^;>]+)", rr[0]).group(1)
        first, _ = udp_request(b, "BYE", "sip:1001@%s:5061" % ph.local_ip,
                               route="<sip:%s;lr;gts=%s>" % (b.address, tok))
        assert first == "SIP/2.0 403 Invalid Flow Token", first
        b.wait_log(r"flow token naming a socket this proxy does not have in "
                   r"our own Route of a BYE from .*: refused")
        # the phone hangs up call 2: over its connection, A to the SIP Server
        d = e.ss.dialogs[calls[2]]
        bye = build("BYE %s SIP/2.0" % e.ss.contact, [
            ("Via", ph.via()), ("Max-Forwards", "70")]
            + [("Route", "<%s>" % r) for r in reversed(rr)]
            + [("From", "<sip:1001@%s>;tag=ph-%s" % (POOL, calls[2])),
               ("To", "<sip:2000@%s>;tag=%s" % (POOL, d.local_tag)),
               ("Call-ID", calls[2]), ("CSeq", "2 BYE")])
        ph.send(bye)
        ok = ph.recv(5, want=lambda m: m.is_reply and m.method == "BYE")
        assert ok.status == 200, ok.text
        assert e.ss.wait_got("BYE", calls[2])

        # the SIP Server calls the phone at its registered Contact: A on
        # both sides (script's record_route(), no pair), as before
        t, res = in_thread(e.ss.invite, contact, via_a(e), own_socket=True)
        inv = ph.recv(5, want=lambda m: not m.is_reply
                      and m.method == "INVITE")
        irr = record_routes(inv)
        assert irr and all(r.startswith("sip:%s" % a.address)
                           for r in irr), irr
        ph.send(response(inv, 486, "Busy Here", to_tag="ph2"))
        t.join(5)

        # A dies with the phone's connection: the SIP Server's BYE for call
        # 3 reaches B (ICMP from A), B's relay to A gets no answer: 430
        ph.close()
        sigkill(a)
        e.ss.resolver = e.resolver
        reply, att, _ = ss_bye_to_phone(e, ph, calls[3], answer=False)
        assert reply is not None and reply.status == 430, att
        assert [(x.addr[0], x.outcome) for x in att] == [
            (a.address, "icmp"), (b.address, "reply")], att
    finally:
        ph.close()
        e.phone.stop()
        e.ss.stop()
        e.backup.stop()


def test_pool_rr_without_port(kamailio_factory, tmp_path):
    """rr_pool_port 0: no port in the pool's Record-Route (user agents look
    up SRV records by the transport), and the proxy still takes it"""
    cfg = reference_cfg().replace(
        'modparam("genesys_ha", "rr_pool_name", POOL_RR_NAME)',
        'modparam("genesys_ha", "rr_pool_name", POOL_RR_NAME)\n'
        'modparam("genesys_ha", "rr_pool_port", 0)')
    assert "rr_pool_port" in cfg
    e = make_env(kamailio_factory, tmp_path, nproxies=1,
                 extra={}, cfg_text=cfg)
    try:
        d, ok, _ = e.phone.invite("sip:2000@%s" % POOL, via_a(e))
        assert d is not None, ok
        inv = e.ss.wait_got("INVITE", d.call_id)[0]
        rr = record_routes(inv)
        assert rr == ["sip:%s;transport=udp;lr;gha=%s*1001" % (POOL, PAIR)], rr
        # the UA takes port 5060 for a URI without one (no SRV table here)
        bye, att = e.phone.request(d, "BYE")
        assert bye is not None and bye.status == 200, att
        assert e.ss.wait_got("BYE", d.call_id)
    finally:
        e.phone.stop()
        e.ss.stop()
        e.backup.stop()


@pytest.mark.parametrize("name", ["sip-pool.example.test:5060",
                                  "-bad.example", "pool;lr"])
def test_invalid_pool_name_stops_start_up(tmp_path, name):
    pool = write_pool(tmp_path / "pool.xml",
                      [(PAIR, "sip:127.0.0.1:5060", "sip:127.0.0.1:5070",
                        None)])
    k = harness.Kamailio(tmp_path / "k", cfg_text=reference_cfg(),
                         defines={"POOL_FILE": '"%s"' % pool,
                                  "POOL_RR_NAME": '"%s"' % name})
    with pytest.raises(harness.HarnessError):
        k.start(timeout=10)
    k.stop(check=False)
    assert "rr_pool_name '%s' is invalid" % name in k.log_text()


def test_add_rr_param_after_reaches_both(kamailio_factory, tmp_path):
    """a parameter added after ha_record_route() (add_rr_param(), as
    sticky_rr() does) lands in both Record-Routes of the pool's double
    Record-Route, as with rr's own"""
    from pool_ua import TcpUA
    cfg = reference_cfg()
    old = ("\tif (is_method(\"INVITE|SUBSCRIBE|REFER\")) {\n"
           "\t\tha_record_route();\n\t}\n\troute(RELAY);")
    assert old in cfg
    cfg = cfg.replace(old, old.replace("ha_record_route();",
                                       'ha_record_route();\n\t\t'
                                       'add_rr_param(";x=1");'))
    e = make_env(kamailio_factory, tmp_path, nproxies=1, cfg_text=cfg)
    gw = TcpUA(harness.next_address(), resolver=e.resolver)
    gw.start()
    try:
        d, ok, att = e.ss.invite("sip:2000@%s:5060;transport=tcp"
                                 % gw.address, via_a(e), own_socket=True)
        assert d is not None, (ok, att)
        rr = record_routes(gw.wait_got("INVITE", d.call_id)[0])
        assert rr == ["sip:%s:5060%s;r2=on;lr;gha=%s*2000;x=1"
                      % (POOL, t, PAIR) for t in (";transport=tcp", "")], rr
    finally:
        gw.stop()
        e.phone.stop()
        e.ss.stop()
        e.backup.stop()


def test_frozen_proxy_next_address_after_timeout(env):
    """proxy A frozen (SIGSTOP: no ICMP, no answer): the user agents try
    the next address of the name after their timeout, and the BYEs of calls
    set up through A reach the other side through B"""
    a = env.proxies[0]
    calls = []
    for i in range(4):
        d, ok, att = env.phone.invite("sip:2000@%s" % POOL, via_a(env))
        assert d is not None, (ok, att)
        assert env.ss.wait_got("ACK", d.call_id, 1)
        calls.append(d)
    env.phone.timeout = env.ss.timeout = 0.5
    os.killpg(a.proc.pid, signal.SIGSTOP)
    try:
        for i, d in enumerate(calls):
            if i % 2 == 0:
                bye, att = env.phone.request(d, "BYE")
                got = env.ss.wait_got("BYE", d.call_id)
            else:
                bye, att = env.ss.request(env.ss.dialogs[d.call_id], "BYE")
                got = env.phone.wait_got("BYE", d.call_id)
            assert bye is not None and bye.status == 200 and got, att
            assert [(x.addr[0], x.outcome) for x in att] == [
                (a.address, "timeout"), (env.proxies[1].address, "reply")], att
    finally:
        os.killpg(a.proc.pid, signal.SIGCONT)
        # running again (its workers answer RPC) before the fixtures stop
        # the peers and the proxies
        deadline = time.monotonic() + 5
        while a.rpc_raw("core.uptime").returncode != 0 \
                and time.monotonic() < deadline:
            time.sleep(0.05)
