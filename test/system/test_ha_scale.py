"""genesys_ha with large pools (issue 10): lookups by pair name, member
address and Request-URI host in a 1000-pair pool (hash tables built with
the snapshot), reloads that keep the genesys_oos targets of unchanged
members, and the max_pool_elements limit."""

import re
import socket
import time

import pytest

import harness
import ha_util as hu
from ha_util import pool


def cfg_with(oos=None, **params):
    """the reference cfg with genesys_ha parameters added"""
    text = hu.reference_cfg(oos)
    add = "".join('modparam("genesys_ha", "%s", %s)\n' % kv
                  for kv in params.items())
    return text.replace('loadmodule "genesys_ha"\n',
                        'loadmodule "genesys_ha"\n' + add, 1)


def large_pool_proxy(kamailio_factory, path, n, defines, **kw):
    """a proxy on the pool file path of n pairs: probing off, room for
    every pair's targets"""
    return hu.start_proxy(
        kamailio_factory, path,
        cfg_text=cfg_with(dict(hu.FAST_OOS, oos_check=0,
                               max_targets=2 * n + 16)),
        defines=defines, **kw)


def filler(i, k):
    """member k of filler pair i: never contacted (probing is off)"""
    return "sip:127.98.%d.%d:%d" % (i // 250, i % 250 + 1, 5060 + k)


def wait_for(pred, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not pred():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.02)
    return True


def tcp_request(src_addr, k, method, ruri):
    """one request over TCP from src_addr (an ephemeral port)"""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind((src_addr, 0))
    s.connect((k.address, k.port))
    port = s.getsockname()[1]
    msg = ("%s %s SIP/2.0\r\n"
           "Via: SIP/2.0/TCP %s:%d;branch=z9hG4bKtcp%d\r\n"
           "From: <sip:sipserver@%s>;tag=t1\r\n"
           "To: <%s>\r\n"
           "Call-ID: tcp-%f@%s\r\n"
           "CSeq: 1 %s\r\n"
           "Contact: <sip:sips@%s:%d;transport=tcp>\r\n"
           "Max-Forwards: 70\r\n"
           "Content-Length: 0\r\n\r\n"
           % (method, ruri, src_addr, port, int(time.time() * 1e6), src_addr,
              ruri, time.time(), src_addr, method, src_addr, port))
    s.sendall(msg.encode())
    return s


def test_large_pool_lookups(tmp_path, kamailio_factory, peer_factory):
    """1000 pairs: a SIP Server at the end of the pool is recognised (UDP
    from its port, TCP from any port), the Request-URI finds a member or a
    pair in the middle, and an in-dialog request to a pair's backup goes to
    its active member."""
    n = 1000
    srv, x1, x2, y1, y2 = (peer_factory() for _ in range(5))
    pairs = [("SIPS_%d" % i, filler(i, 0), filler(i, 1), None)
             for i in range(n)]
    pairs[0] = ("SIPS_0", srv.uri, filler(0, 1), None)       # serving
    pairs[500] = ("sips-mid", y1.uri, y2.uri, None)
    pairs[n - 1] = ("SIPS_%d" % (n - 1), x1.uri, x2.uri, None)
    path = hu.write_pool(tmp_path / "pool.xml", pairs)
    k = large_pool_proxy(kamailio_factory, path, n,
                         {"SERVING_SIPSERVER": '"SIPS_0"'})
    k.wait_log(r"pool .* loaded: 1000 SIP Server pairs")

    # from a phone: the serving pair
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status and status.startswith("SIP/2.0 200"), status
    assert len(srv.requests("INVITE")) == 1

    # from the last pair's primary (UDP, its own port) to a member of the
    # pair in the middle: that pair's active member, not the serving pair
    r = x1.send_request((k.address, k.port), "INVITE",
                        "sip:2000@%s:5060" % y1.address)
    assert r and r.startswith("SIP/2.0 200"), r
    assert len(y1.requests("INVITE")) == 1
    # ... to the middle pair's backup by its address: its active member
    r = x1.send_request((k.address, k.port), "INVITE",
                        "sip:2001@%s:5060" % y2.address)
    assert r and r.startswith("SIP/2.0 200"), r
    assert len(y1.requests("INVITE")) == 2 and not y2.requests("INVITE")
    # ... to a pair by its name
    r = x2.send_request((k.address, k.port), "INVITE", "sip:2002@sips-mid")
    assert r and r.startswith("SIP/2.0 200"), r
    assert len(y1.requests("INVITE")) == 3
    assert len(srv.requests("INVITE")) == 1

    # over TCP from an ephemeral port of the last pair's backup address:
    # still a SIP Server of the pool (any port), routed by its Request-URI
    s = tcp_request(x2.address, k, "MESSAGE", "sip:2003@%s:5060" % y2.address)
    try:
        assert wait_for(lambda: len(y1.requests("MESSAGE")) == 1), \
            "MESSAGE from a TCP member not routed to sips-mid's active"
    finally:
        s.close()
    assert not srv.requests("MESSAGE")

    # in-dialog, Route names the middle pair, Request-URI its backup: to
    # the pair's active member (the primary)
    route = "<sip:%s;lr;gha=sips-mid>" % k.address
    status, _ = hu.udp_request(k, "BYE", y2.uri, route=route)
    assert status and status.startswith("SIP/2.0 200"), status
    assert len(y1.requests("BYE")) == 1 and not y2.requests("BYE")
    # an unknown pair in the Route: refused
    status, _ = hu.udp_request(k, "BYE", y2.uri,
                               route="<sip:%s;lr;gha=SIPS_1000>" % k.address)
    assert status and status.startswith("SIP/2.0 403"), status


def test_reload_keeps_targets_of_unchanged_members(tmp_path, kamailio_factory,
                                                   peer_factory):
    """A reload hands the genesys_oos targets of unchanged members over to
    the new pool (same ids, never released, probing goes on); a changed
    member gets a new target and the old one is released."""
    a1, a2, b1, b2, b3 = (peer_factory() for _ in range(5))
    path = tmp_path / "pool.xml"
    hu.write_pool(path, [("SIPS_A", a1.uri, a2.uri, None),
                         ("SIPS_B", b1.uri, b2.uri, None)])
    k = hu.start_proxy(kamailio_factory, str(path),
                       defines={"SERVING_SIPSERVER": '"SIPS_A"'})
    hu.wait_pool(k, lambda p: all(
        p[n]["members"][r]["state"] == "active"
        for n in ("SIPS_A", "SIPS_B") for r in ("primary", "backup")),
        what="all active")
    before = k.rpc_json("genesys_oos.list")
    # the same pairs in another order, SIPS_B's backup replaced
    hu.write_pool(path, [("SIPS_B", b1.uri, b3.uri, None),
                         ("SIPS_A", a1.uri, a2.uri, None)])
    out = k.rpc_json("genesys_ha.reload")
    assert "generation 2" in out, out
    targets = [t["uri"] for t in k.rpc_json("genesys_oos.list")]
    assert not any(b2.address in t for t in targets), targets
    assert any(b3.address in t for t in targets), targets
    log = k.log_text()
    for p in (a1, a2, b1):
        # registered once (at start), never released
        assert len(re.findall(r"target \d+ \[%s\] registered"
                              % re.escape(p.uri), log)) == 1, p.uri
        assert not re.search(r"target \d+ \[%s\] released"
                             % re.escape(p.uri), log), p.uri
    assert re.search(r"target \d+ \[%s\] released" % re.escape(b2.uri), log)
    # the kept members stay active, the new one is probed
    hu.wait_pool(k, lambda p: p["SIPS_B"]["members"]["backup"]["state"]
                 == "active" and p["SIPS_A"]["members"]["primary"]["state"]
                 == "active", what="new member probed")
    assert pool(k)["SIPS_A"]["members"]["backup"]["state"] == "active"
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status.startswith("SIP/2.0 200") and len(a1.requests("INVITE")) == 1
    assert before  # listed before the reload too


def test_element_limit_refuses_reload_and_start(tmp_path, kamailio_factory,
                                                peer_factory):
    """max_pool_elements: a pool file with more <sipserver>,
    <featureserver> and <proxy> elements is refused (reload: error, the
    running pool is kept and routes; start: kamailio does not start)."""
    a1, a2, b1, b2 = (peer_factory() for _ in range(4))
    path = tmp_path / "pool.xml"
    cfg = cfg_with(max_pool_elements=3)
    pairs = [("SIPS_A", a1.uri, a2.uri, None),
             ("SIPS_B", b1.uri, b2.uri, None)]
    proxies = [("127.0.0.1:5060", None)]
    hu.write_pool(path, pairs, proxies=proxies)      # 3 elements: loads
    k = hu.start_proxy(kamailio_factory, str(path), cfg_text=cfg,
                       defines={"SERVING_SIPSERVER": '"SIPS_A"'})
    hu.write_pool(path, pairs + [("SIPS_C", "sip:127.0.0.1:5901",
                                  "sip:127.0.0.1:5902", None)],
                  proxies=proxies)
    r = k.rpc_raw("genesys_ha.reload")    # kamcmd: the whole 200 characters
    out = r.stdout + r.stderr
    # <sipserver name="SIPS_C"> is at line 14
    want = ("%s:14: element <sipserver>: more than 3 <sipserver>, "
            "<featureserver> and <proxy> elements (max_pool_elements)" % path)
    # the fault is cut to 200 characters (kg_rpc_fault: ctl drops longer
    # ones), the log line has all of it
    assert "500" in out and "40003" in out, out
    assert ("%s:14: element <sipserver>: more than 3" % path) in out, out
    k.wait_log(r"40003 SPR_ERROR_READING_CONFIG_DATA: %s" % re.escape(want))
    p = pool(k)
    assert p["_pool"]["generation"] == 1, p["_pool"]
    assert "SIPS_C" not in p
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status and status.startswith("SIP/2.0 200"), status
    assert len(a1.requests("INVITE")) == 1

    k2 = harness.Kamailio(tmp_path / "k2", cfg_text=cfg,
                          defines={"POOL_FILE": '"%s"' % path})
    with pytest.raises(harness.HarnessError):
        k2.start(timeout=10)
    k2.stop(check=False)
    log = k2.log_text()
    assert re.search(r"40003 SPR_ERROR_READING_CONFIG_DATA: %s"
                     % re.escape(want), log), log[-2000:]

    # a value that is not a count refuses the start
    k3 = harness.Kamailio(tmp_path / "k3", cfg_text=cfg_with(max_pool_elements=0),
                          defines={"POOL_FILE": '"%s"' % path})
    with pytest.raises(harness.HarnessError):
        k3.start(timeout=10)
    k3.stop(check=False)
    assert "max_pool_elements 0 is invalid" in k3.log_text()


def test_site_selection_in_a_large_pool(tmp_path, kamailio_factory,
                                        peer_factory):
    """No serving pair: ha_select_site() balances over the pairs of the
    proxy's site only (its pairs come from the snapshot, not from a scan
    of the pool): 2 east pairs among 1000, every DN on one of them."""
    n = 1000
    e1, e2 = peer_factory(), peer_factory()
    pairs = [("SIPS_%d" % i, filler(i, 0), filler(i, 1), "west")
             for i in range(n)]
    pairs[300] = ("SIPS_E1", e1.uri, filler(300, 1), "east")
    pairs[n - 1] = ("SIPS_E2", e2.uri, filler(n - 1, 1), "east")
    path = hu.write_pool(tmp_path / "pool.xml", pairs)
    k = large_pool_proxy(kamailio_factory, path, n,
                         {"GEO_LOCATION": '"east"'})
    k.wait_log(r"pool .* loaded: 1000 SIP Server pairs")
    for i in range(16):
        status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address,
                                   body_from=str(4000 + i))
        assert status and status.startswith("SIP/2.0 200"), (i, status)
    got1, got2 = len(e1.requests("INVITE")), len(e2.requests("INVITE"))
    assert got1 + got2 == 16 and got1 > 0 and got2 > 0, (got1, got2)
    # a site without pairs: -3, the reference config answers 503
    k2 = large_pool_proxy(kamailio_factory, path, n,
                          {"GEO_LOCATION": '"north"'}, name="north")
    status, _ = hu.udp_request(k2, "INVITE", "sip:2000@%s" % k2.address)
    assert status and status.startswith("SIP/2.0 503"), status


def udp6_request(kport, method, ruri, route=None, timeout=3.0):
    """one request from a fresh ::1 port; returns the final reply's first
    line or None"""
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::1", 0))
    port = s.getsockname()[1]
    extra = "Route: %s\r\n" % route if route else ""
    totag = ";tag=x1" if route else ""
    msg = ("%s %s SIP/2.0\r\n"
           "Via: SIP/2.0/UDP [::1]:%d;branch=z9hG4bK6%d;rport\r\n"
           "From: <sip:1001@[::1]>;tag=e1\r\n"
           "To: <%s>%s\r\n"
           "Call-ID: v6-%f@ep\r\n"
           "CSeq: 1 %s\r\n"
           "Contact: <sip:ep@[::1]:%d>\r\n"
           "Max-Forwards: 70\r\n%s"
           "Content-Length: 0\r\n\r\n"
           % (method, ruri, port, int(time.time() * 1e6), ruri, totag,
              time.time(), method, port, extra))
    text = hu.final_reply(s, msg, ("::1", kport), timeout)
    return text.split("\r\n", 1)[0] if text else None


def test_ipv6_members(tmp_path, kamailio_factory):
    """IPv6 members: an in-dialog request whose Request-URI names the
    backup as [::1]:port (Kamailio keeps the [] of an IPv6 reference) goes
    to the pair's active member, like an IPv4 one."""
    pri, bak = (hu.Peer(address="::1", port=0) for _ in range(2))
    pri.start()
    bak.start()
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
        probe.bind(("::1", 0))
        kport = probe.getsockname()[1]
        probe.close()
        path = hu.write_pool(tmp_path / "pool.xml",
                             [("SIPS_6", pri.uri, bak.uri, None)])
        k = hu.start_proxy(
            kamailio_factory, path,
            defines={"LISTEN_UDP": "udp:[::1]:%d" % kport,
                     "LISTEN_TCP": "tcp:[::1]:%d" % kport})
        hu.wait_pool(k, lambda p: p["SIPS_6"]["members"]["backup"]["state"]
                     == "active", what="members probed")
        # a new request: the serving (only) pair's active member
        assert udp6_request(kport, "MESSAGE", "sip:2000@[::1]:%d" % kport) \
            == "SIP/2.0 200 Peer"
        assert len(pri.requests("MESSAGE")) == 1
        # in dialog, to the backup by its IPv6 reference: the active member
        route = "<sip:[::1]:%d;lr;gha=SIPS_6>" % kport
        assert udp6_request(kport, "BYE", "sip:sips@[::1]:%d" % bak.port,
                            route=route) == "SIP/2.0 200 Peer"
        assert len(pri.requests("BYE")) == 1 and not bak.requests("BYE")
    finally:
        pri.stop()
        bak.stop()
