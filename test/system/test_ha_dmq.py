"""The pool acts as one (issue 11): three kamailio proxies of one pool share
switchover decisions over Kamailio's dmq module (genesys_ha "dmq" 1, the
reference cfg's WITH_DMQ)."""

import re
import time

import pytest

import ha_util as hu
from dmq_util import Pool, peers, wait_active
from sip_peer import wait_until


def dmq_received(ks):
    """{(proxy, peer): DMQ messages received} among the proxies ks"""
    addrs = {k.address + ":5060" for k in ks}
    return {(k.address, a): int(p["messages"]) for k in ks
            for a, p in peers(k)[1].items() if a in addrs and
            a != k.address + ":5060"}


def wait_broadcasts(ks, count=2, timeout=3.0):
    """every proxy of ks has received `count` more DMQ messages (state
    broadcasts, every 300 ms) from each of the others"""
    before = dmq_received(ks)
    wait_until(lambda: all(n >= before.get(key, 0) + count
                           for key, n in dmq_received(ks).items()),
               timeout, lambda: "%d more DMQ messages from every peer: %s -> "
               "%s" % (count, before, dmq_received(ks)))


def dmq_dropped(k):
    out = k.rpc("stats.get_statistics", "genesys_ha:")
    return int(re.search(r"dmq_dropped = (\d+)", out).group(1))


def both_up(p):
    return (p["SIPS_A"]["members"]["primary"]["state"] == "active"
            and p["SIPS_A"]["members"]["backup"]["state"] == "active")


def wait_both_up(ks, what="both members up"):
    for k in ks:
        hu.wait_pool(k, both_up, what=what)


def three_proxies(tmp_path, kamailio_factory, pri, bak, extra=None):
    """the set-up of most tests here: three proxies of one pool (SIPS_A:
    pri, bak) started, meshed over DMQ, each seeing both members up"""
    pool = Pool(kamailio_factory, tmp_path,
                [("SIPS_A", pri.uri, bak.uri, None)], extra=extra)
    pool.start_all()
    wait_both_up(pool.ks)
    return pool


def one_proxy(tmp_path, kamailio_factory, pri, bak):
    """proxy 0 of a pool of three (the others not started), both members up"""
    pool = Pool(kamailio_factory, tmp_path,
                [("SIPS_A", pri.uri, bak.uri, None)])
    k0 = pool.start(0)
    wait_both_up([k0])
    return pool, k0


def switch_pool_to_backup(ks):
    """operator switchover on proxy 0, in force on every proxy of ks"""
    ks[0].rpc("genesys_ha.switchover", "SIPS_A")
    wait_active(ks, "SIPS_A", "backup")


def invite_goes_to(k, pri, bak):
    """one INVITE through k: which member got it"""
    n1, n2 = len(pri.requests("INVITE")), len(bak.requests("INVITE"))
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status and status.startswith("SIP/2.0 200"), status
    if len(pri.requests("INVITE")) > n1:
        return "primary"
    assert len(bak.requests("INVITE")) > n2
    return "backup"


def test_operator_switchover_in_force_on_every_proxy(
        tmp_path, kamailio_factory, peer_factory):
    """genesys_ha.switchover on one proxy: the two others show the backup
    active within 50 ms and route a new INVITE to it; switching back on
    another proxy brings all three back to the primary (epoch 2)."""
    pri, bak = peer_factory(), peer_factory()
    pool = three_proxies(tmp_path, kamailio_factory, pri, bak)
    ks = pool.ks
    for k in ks:
        assert invite_goes_to(k, pri, bak) == "primary"
    t0 = time.monotonic()
    out = ks[0].rpc("genesys_ha.switchover", "SIPS_A")
    t_rpc = time.monotonic() - t0
    assert "backup" in out, out
    took = wait_active(ks[1:], "SIPS_A", "backup")
    print("switchover seen on the 2 other proxies %.1f ms after the RPC "
          "returned (RPC itself %.1f ms)" % (took * 1000, t_rpc * 1000))
    assert took < 0.05, took
    for k in ks:
        assert invite_goes_to(k, pri, bak) == "backup"
        p = hu.pool(k)["SIPS_A"]
        if k is not ks[0]:
            assert p["last_switchover"]["trigger"] == "peer", p
    head, _ = peers(ks[1])
    assert "SIPS_A=1/backup" in head["epochs"], head
    # back, decided by another proxy
    ks[2].rpc("genesys_ha.switchover", "SIPS_A")
    wait_active(ks, "SIPS_A", "primary")
    for k in ks:
        assert invite_goes_to(k, pri, bak) == "primary"
        assert "SIPS_A=2/primary" in peers(k)[0]["epochs"]
    # nothing was re-published in a loop: one applied switchover per
    # decision on each of the other proxies
    for k in ks:
        assert hu.pool(k)["SIPS_A"]["switchovers"] == 2, hu.pool(k)


def test_primary_dies_one_switchover_for_the_pool(
        tmp_path, kamailio_factory, peer_factory):
    """The primary stops answering: whichever proxy's probe sees it first
    decides, the pool follows; every proxy routes to the backup and counts
    exactly one switchover (no decision ping-pong)."""
    pri, bak = peer_factory(), peer_factory()
    pool = three_proxies(tmp_path, kamailio_factory, pri, bak)
    ks = pool.ks
    pri.options_code = None
    pri.answer_requests = False
    wait_active(ks, "SIPS_A", "backup", timeout=8.0)
    for k in ks:
        assert invite_goes_to(k, pri, bak) == "backup"
    wait_broadcasts(ks)  # two state broadcasts later: still one switchover
    epochs = set()
    for k in ks:
        p = hu.pool(k)["SIPS_A"]
        assert p["active"] == "backup" and p["switchovers"] == 1, p
        epochs.add(re.search(r"SIPS_A=(\d+)/backup",
                             peers(k)[0]["epochs"]).group(1))
    assert len(epochs) == 1, epochs


def test_partition_one_proxy_cannot_reach_the_primary(
        tmp_path, kamailio_factory, peer_factory):
    """The primary ignores the probes of proxy 0 only: proxy 0 switches to
    the backup and the two others, which still reach the primary, follow
    its decision (without DMQ they would stay on the primary: a split
    pool).  After the partition heals the pool stays on one member."""
    from dmq_util import SelectivePeer
    bak = peer_factory()
    pool_addrs = None
    pri = SelectivePeer()
    pri.start()
    try:
        pool = three_proxies(tmp_path, kamailio_factory, pri, bak)
        pool_addrs = pool.addrs
        ks = pool.ks
        pri.ignore = {pool_addrs[0]}
        wait_active(ks, "SIPS_A", "backup", timeout=8.0)
        p0 = hu.pool(ks[0])["SIPS_A"]
        assert p0["members"]["primary"]["state"] == "down", p0
        assert p0["last_switchover"]["trigger"] == "no-answer", p0
        for k in ks[1:]:
            p = hu.pool(k)["SIPS_A"]
            # they still see the primary alive, and follow the pool
            assert p["members"]["primary"]["state"] == "active", p
            assert p["last_switchover"]["trigger"] == "peer", p
        for k in ks:
            assert invite_goes_to(k, pri, bak) == "backup"
        # heal: proxy 0 sees the primary again; nobody switches back
        pri.ignore = set()
        hu.wait_pool(ks[0], both_up, what="primary seen again")
        wait_broadcasts(ks)
        for k in ks:
            p = hu.pool(k)["SIPS_A"]
            assert p["active"] == "backup" and p["switchovers"] == 1, p
            assert invite_goes_to(k, pri, bak) == "backup"
    finally:
        pri.stop()


def test_dmq_partition_heals_to_the_newest_decision(
        tmp_path, kamailio_factory, peer_factory):
    """Proxy 2 is cut off from the pool's DMQ (its pool file lists only
    itself, so it drops its peers' messages, counted): the pool switches
    twice (epoch 2, primary) while proxy 2 alone switches once (epoch 1,
    backup).  When its pool file lists the proxies again, the newest
    decision wins everywhere within one state broadcast."""
    pri, bak = peer_factory(), peer_factory()
    pool = three_proxies(tmp_path, kamailio_factory, pri, bak)
    alone = tmp_path / "alone.xml"
    hu.write_pool(alone, pool.pairs, proxies=[(pool.addrs[2] + ":5060", None)])
    ks = pool.ks
    # cut proxy 2 off: restarted with its own pool file (lists only it)
    ks[2].stop()
    k2 = pool.start(2, name="proxy2-alone", path=alone)
    ks[2] = k2
    ks[0].rpc("genesys_ha.switchover", "SIPS_A")
    wait_active(ks[:2], "SIPS_A", "backup")
    ks[1].rpc("genesys_ha.switchover", "SIPS_A")
    wait_active(ks[:2], "SIPS_A", "primary")
    wait_both_up([k2], what="both members up on proxy 2")
    dropped = dmq_dropped(k2)
    k2.rpc("genesys_ha.switchover", "SIPS_A")
    # broadcasts of both sides cross, and are dropped
    wait_broadcasts(ks[:2])
    wait_until(lambda: dmq_dropped(k2) >= dropped + 2, 3,
               "two more messages dropped by proxy 2")
    assert hu.pool(k2)["SIPS_A"]["active"] == "backup"
    assert hu.pool(ks[0])["SIPS_A"]["active"] == "primary"
    st = k2.statistics("genesys_ha:")
    assert st["dmq_dropped"] >= 1, st
    # heal: proxy 2's pool lists every proxy again
    hu.write_pool(alone, pool.pairs,
                  proxies=[(a + ":5060", None) for a in pool.addrs])
    k2.rpc("genesys_ha.reload")
    took = wait_active([k2], "SIPS_A", "primary", timeout=3.0)
    print("proxy 2 converged %.0f ms after the heal (state every 300 ms)"
          % (took * 1000))
    for k in ks:
        assert invite_goes_to(k, pri, bak) == "primary"
        assert "SIPS_A=2/primary" in peers(k)[0]["epochs"], peers(k)


def test_restarted_proxy_routes_to_the_pools_member_from_its_first_call(
        tmp_path, kamailio_factory, peer_factory):
    """The pool is on the backup (operator); proxy 2 stops: the others log
    40002 for it.  Restarted, it asks its peers for the pool's state before
    it routes: its very first INVITE goes to the backup (without DMQ it
    would start on the primary); the others log its return."""
    pri, bak = peer_factory(), peer_factory()
    pool = three_proxies(tmp_path, kamailio_factory, pri, bak)
    ks = pool.ks
    switch_pool_to_backup(ks)
    gone = pool.addrs[2] + ":5060"
    ks[2].stop()
    for k in ks[:2]:
        k.wait_log(r"40002 SPR_OTHER_PROXY_INSTANCE_DISCONNECTED: proxy %s "
                   % re.escape(gone), timeout=5)
        assert peers(k)[1][gone]["state"] == "down"
    k2 = pool.start(2, name="proxy2-again")
    ks[2] = k2
    # the first request, at once: no probe has answered yet on proxy 2
    assert invite_goes_to(k2, pri, bak) == "backup"
    head, _ = peers(k2)
    assert head["start_sync"] == "answered", head
    assert head["start_sync_ms"] < 1000, head
    for k in ks[:2]:
        k.wait_log(r"proxy %s of the pool answers DMQ again" % re.escape(gone),
                   timeout=5)
        assert peers(k)[1][gone]["state"] == "up"
    assert "SIPS_A=1/backup" in head["epochs"], head


def test_stopped_peer_never_blocks_routing(
        tmp_path, kamailio_factory, peer_factory):
    """Proxy 1 is frozen (SIGSTOP): a switchover on proxy 0 still reaches
    proxy 2 at once and calls through proxies 0 and 2 are routed without
    delay; proxy 1 is reported down (40002, event route peer-down, counted)
    and, thawed, gets the pool's decision (event route peer-up)."""
    import os
    import signal
    pri, bak = peer_factory(), peer_factory()
    pool = three_proxies(tmp_path, kamailio_factory, pri, bak)
    ks = pool.ks
    os.killpg(ks[1].proc.pid, signal.SIGSTOP)
    try:
        ks[0].rpc("genesys_ha.switchover", "SIPS_A")
        took = wait_active([ks[2]], "SIPS_A", "backup")
        assert took < 0.05, took
        for k in (ks[0], ks[2]):
            t0 = time.monotonic()
            assert invite_goes_to(k, pri, bak) == "backup"
            assert time.monotonic() - t0 < 0.5
        frozen = pool.addrs[1] + ":5060"
        ks[0].wait_log(r"40002 SPR_OTHER_PROXY_INSTANCE_DISCONNECTED: proxy "
                       r"%s " % re.escape(frozen), timeout=5)
        # the reference cfg's event route, run by the event process
        ks[0].wait_log(r"pool peer event genesys-ha:peer-down: proxy %s of the pool "
                       r"is silent" % re.escape(frozen), timeout=2)
        n = len(ks[0].log_text())
    finally:
        os.killpg(ks[1].proc.pid, signal.SIGCONT)
    wait_active([ks[1]], "SIPS_A", "backup", timeout=3)
    assert invite_goes_to(ks[1], pri, bak) == "backup"
    ks[0].wait_log(r"pool peer event genesys-ha:peer-up: proxy %s of the pool is up"
                   % re.escape(frozen), timeout=3, start=n)
    st = ks[0].statistics("genesys_ha:")
    assert st["dmq_peer_down"] == 1, st


def test_dmq_only_from_the_pools_proxies(
        tmp_path, kamailio_factory, peer_factory):
    """A KDMQ decision (epoch 99, backup) from an address that is not a
    <proxy> of the pool file gets 403, is counted in dmq_dropped and
    changes nothing; dmq's own node list requests from there are refused
    too.  A malformed body from a pool address (here a pool proxy that is
    not running, the test sends from its address) gets 400."""
    from dmq_util import send_kdmq
    pri, bak = peer_factory(), peer_factory()
    pool, k0 = one_proxy(tmp_path, kamailio_factory, pri, bak)
    forged = "GHA1 D 10.9.9.9:5060\nSIPS_A 1 99 10.9.9.9:5060 3 1 3\n"
    assert send_kdmq(k0, forged) == "SIP/2.0 403 Forbidden"
    assert send_kdmq(k0, "sip:10.9.9.9:5060;status=active\n",
                     peer="notification_peer") == "SIP/2.0 403 Forbidden"
    st = k0.statistics("genesys_ha:")
    assert st["dmq_dropped"] == 2, st
    assert st["dmq_applied"] == 0, st
    p = hu.pool(k0)["SIPS_A"]
    assert p["active"] == "primary" and p["switchovers"] == 0, p
    assert invite_goes_to(k0, pri, bak) == "primary"
    # from a pool proxy's address: accepted by the source check; garbage
    # is refused by the parser, a valid decision is applied
    assert send_kdmq(k0, "hello\n", address=pool.addrs[1]).startswith(
        "SIP/2.0 400")
    good = "GHA1 D %s:5060\nSIPS_A 1 5 %s:5060 1 1 3\n" % (
        pool.addrs[1], pool.addrs[1])
    assert send_kdmq(k0, good, address=pool.addrs[1]) == "SIP/2.0 200 OK"
    wait_active([k0], "SIPS_A", "backup", timeout=2)
    assert invite_goes_to(k0, pri, bak) == "backup"


def test_standalone_without_dmq(tmp_path, kamailio_factory, peer_factory):
    """Without WITH_DMQ: genesys_ha.peers says so, no DMQ process runs, a
    switchover is local as before.  dmq 1 without the dmq module loaded
    stops the start with a message that says what to load."""
    pri, bak = peer_factory(), peer_factory()
    path = hu.write_pool(tmp_path / "pool.xml",
                         [("SIPS_A", pri.uri, bak.uri, None)])
    k = hu.start_proxy(kamailio_factory, path,
                       defines={"SERVING_SIPSERVER": '"SIPS_A"'})
    assert peers(k)[0]["dmq"] == "off", peers(k)
    procs = k.processes()
    assert not any("GENESYS_HA DMQ" in d for _, d in procs), procs
    hu.wait_pool(k, both_up, what="both members up")
    k.rpc("genesys_ha.switchover", "SIPS_A")
    assert invite_goes_to(k, pri, bak) == "backup"
    # dmq 1, no dmq module
    import harness
    cfg = hu.reference_cfg().replace(
        'loadmodule "genesys_ha"\n',
        'loadmodule "genesys_ha"\nmodparam("genesys_ha", "dmq", 1)\n', 1)
    bad = harness.Kamailio(tmp_path / "nodmq", cfg_text=cfg, defines={
        "POOL_FILE": '"%s"' % path})
    with pytest.raises(harness.HarnessError):
        bad.start()
    assert 'add loadmodule "dmq" before loadmodule "genesys_ha"' in \
        bad.log_text()


def test_start_sync_of_a_large_pool(tmp_path, kamailio_factory):
    """80 pairs (their members silent: only the decisions matter), all on
    the backup by decisions of the pool (injected from a pool proxy's
    address); a proxy started afterwards has every pair on the backup as
    soon as its start-up query is answered, with state broadcasts too rare
    to have helped (the answer is one reply over several datagrams'
    worth)."""
    import harness
    from dmq_util import send_kdmq
    pairs = [("SIPS_LARGE_POOL_%03d" % i, "sip:%s:5060" % harness.next_address(),
              "sip:%s:5060" % harness.next_address(), None)
             for i in range(80)]
    pool = Pool(kamailio_factory, tmp_path, pairs,
                extra={"DMQ_INTERVAL": "20000", "DMQ_PEER_TIMEOUT": "60000",
                       "SERVING_SIPSERVER": '"SIPS_LARGE_POOL_000"'})
    k0 = pool.start(0)
    body = "GHA1 D %s:5060\n" % pool.addrs[1] + "".join(
        "%s 1 3 %s:5060 0 0 3\n" % (name, pool.addrs[1])
        for name, _, _, _ in pairs)
    assert len(body) > 3000  # more than two 1300-byte datagrams
    assert send_kdmq(k0, body, address=pool.addrs[1]) == "SIP/2.0 200 OK"
    p0 = hu.pool(k0)
    assert all(p0[n]["active"] == "backup" for n, _, _, _ in pairs), p0
    k2 = pool.start(2)
    wait_until(lambda: peers(k2)[0]["start_sync"] == "answered", 3,
               lambda: k2.rpc("genesys_ha.peers"))
    p2 = hu.pool(k2)
    assert [n for n, _, _, _ in pairs if p2[n]["active"] != "backup"] == []
    assert "=3/backup" in peers(k2)[0]["epochs"]


def test_restart_under_load_every_first_call_to_the_pools_member(
        tmp_path, kamailio_factory, peer_factory):
    """The pool is on the backup; proxy 2 restarts and 8 INVITEs hit it at
    once, as soon as it answers kamcmd (more than its SIP workers): every
    one of the 8 goes to the backup."""
    import threading
    pri, bak = peer_factory(), peer_factory()
    pool = three_proxies(tmp_path, kamailio_factory, pri, bak)
    ks = pool.ks
    switch_pool_to_backup(ks)
    ks[2].stop()
    n1, n2 = len(pri.requests("INVITE")), len(bak.requests("INVITE"))
    k2 = pool.start(2, name="proxy2-again")
    res = []

    def call():
        res.append(hu.udp_request(k2, "INVITE", "sip:2000@%s" % k2.address)[0])

    ths = [threading.Thread(target=call) for _ in range(8)]
    for t in ths:
        t.start()
    for t in ths:
        t.join()
    assert all(r and r.startswith("SIP/2.0 200") for r in res), res
    assert len(pri.requests("INVITE")) == n1
    assert len(bak.requests("INVITE")) == n2 + 8
    assert peers(k2)[0]["start_sync"] == "answered"


def test_decision_rule_on_a_proxy(tmp_path, kamailio_factory, peer_factory):
    """The documented rule, applied by a running proxy to decisions that
    arrive over DMQ (sent from a pool proxy's address): with equal epochs
    the lower origin address wins, a higher epoch wins whatever its
    origin, an older one is ignored."""
    from dmq_util import send_kdmq
    pri, bak = peer_factory(), peer_factory()
    pool, k0 = one_proxy(tmp_path, kamailio_factory, pri, bak)
    k0.rpc("genesys_ha.switchover", "SIPS_A")       # epoch 1, origin k0
    frm = pool.addrs[1]

    def decide(active, epoch, origin):
        body = "GHA1 D %s:5060\nSIPS_A %d %d %s 1 1 3\n" % (
            frm, active, epoch, origin)
        assert send_kdmq(k0, body, address=frm) == "SIP/2.0 200 OK"
        return hu.pool(k0)["SIPS_A"]["active"], peers(k0)[0]["epochs"]

    high, low = "127.255.255.255:65535", "127.0.0.0:1"
    assert decide(0, 1, high) == ("backup", "SIPS_A=1/backup")
    assert decide(0, 1, low) == ("primary", "SIPS_A=1/primary")
    assert decide(1, 1, "127.0.0.0:2") == ("primary", "SIPS_A=1/primary")
    assert decide(1, 2, high) == ("backup", "SIPS_A=2/backup")
    assert decide(0, 1, low) == ("backup", "SIPS_A=2/backup")
    assert invite_goes_to(k0, pri, bak) == "backup"
    # the next local decision continues from the pool's epoch
    k0.rpc("genesys_ha.switchover", "SIPS_A")
    assert "SIPS_A=3/primary" in peers(k0)[0]["epochs"]


def options_sources(peer, since):
    """{source address: OPTIONS received since `since`}"""
    out = {}
    with peer._lock:
        for t, text, src in peer.received:
            if t >= since and text.startswith("OPTIONS "):
                out[src[0]] = out.get(src[0], 0) + 1
    return out


def test_distributed_probing_one_prober_per_sip_server(
        tmp_path, kamailio_factory, peer_factory):
    """dmq_probing 1: each SIP Server is probed by one proxy of the three
    (OPTIONS per SIP Server per period: 1 instead of 3), the others take
    its results (the primary's death is seen by all); when the prober of a
    member is frozen another proxy takes over within peer timeout + one
    period."""
    import os
    import signal
    pri, bak = peer_factory(), peer_factory()
    pool = three_proxies(tmp_path, kamailio_factory, pri, bak,
                         extra={"DMQ_PROBING": "1"})
    ks = pool.ks
    for k in ks:
        assert peers(k)[0]["probing"] == 1, peers(k)
    # settled when, over a 1.2 s window, each SIP Server had one prober
    deadline = time.monotonic() + 10
    while True:
        t0 = time.monotonic()
        time.sleep(1.2)     # a window to count the probes in
        if all(len(options_sources(m, t0)) == 1 for m in (pri, bak)):
            break
        assert time.monotonic() < deadline, [options_sources(m, t0)
                                              for m in (pri, bak)]
    t0 = time.monotonic()
    time.sleep(3.2)     # what is tested: the probes of this window
    for member in (pri, bak):
        src = options_sources(member, t0)
        assert len(src) == 1, src          # one prober
        assert 2 <= sum(src.values()) <= 5, src   # ~1 per second (oos 1 s)
    prober = next(iter(options_sources(pri, t0)))
    i = pool.addrs.index(prober)
    # the prober of the primary freezes: another proxy takes over
    os.killpg(ks[i].proc.pid, signal.SIGSTOP)
    try:
        t1 = time.monotonic()
        wait_until(lambda: any(a != prober
                               for a in options_sources(pri, t1)), 6,
                   lambda: options_sources(pri, t1), step=0.05)
        took = time.monotonic() - t1
        print("takeover after %.2f s (peer timeout 1 s, period 1 s)" % took)
        assert took < 3.5, took
        # the primary dies: the live proxies see it through their probers
        offsets = [len(k.log_text()) for k in ks]
        pri.options_code = None
        pri.answer_requests = False
        live = [k for j, k in enumerate(ks) if j != i]
        wait_active(live, "SIPS_A", "backup", timeout=6)
        for k in live:
            assert invite_goes_to(k, pri, bak) == "backup"
    finally:
        os.killpg(ks[i].proc.pid, signal.SIGCONT)
    wait_active([ks[i]], "SIPS_A", "backup", timeout=5)
    # the thawed prober's first messages carry what it knew before its
    # freeze (primary alive): nobody takes that; its own probe corrects it
    for k in ks:
        hu.wait_pool(k, lambda p: p["SIPS_A"]["members"]["primary"]["state"]
                     == "down", what="primary down everywhere")
    wait_broadcasts(ks)     # the thawed prober's messages were heard
    for j, k in enumerate(ks):
        if j == i:
            continue
        assert not re.search(r"target %s state down -> active"
                             % re.escape(pri.uri),
                             k.log_text()[offsets[j]:]), j


def test_dmq_over_mutual_tls(tmp_path, kamailio_factory, peer_factory):
    """DMQ over TLS with mutual certificates (WITH_TLS; dmq's server and
    notification addresses with ;transport=tls; no UDP socket for DMQ): a
    switchover on one proxy is in force on the two others, and the KDMQ
    requests went over TLS connections between the proxies."""
    from tls_ua import Certs
    from dmq_util import dmq_defines
    from sticky_env import tls_cfg
    certs = Certs(tmp_path / "certs")
    tcfg = tmp_path / "tls.cfg"
    tcfg.write_text(tls_cfg(certs, mutual=True, client_certs=True))
    pri, bak = peer_factory(), peer_factory()
    pool = Pool(kamailio_factory, tmp_path,
                [("SIPS_A", pri.uri, bak.uri, None)])
    ks = []
    for i, addr in enumerate(pool.addrs):
        others = [a for a in pool.addrs if a != addr]
        d = dmq_defines(addr, others)
        del d["DMQ_LISTEN"]
        d.update({
            "WITH_TLS": None, "LISTEN_TLS": "tls:%s:5061" % addr,
            "TLS_CFG": '"%s"' % tcfg,
            "DMQ_SERVER_ADDRESS": '"sip:%s:5061;transport=tls"' % addr,
            "DMQ_NOTIFICATION_ADDRESS":
                '"sip:%s:5061;transport=tls"' % others[0],
            "DMQ_NOTIFICATION_ADDRESS2":
                '"sip:%s:5061;transport=tls"' % others[1]})
        ks.append(hu.start_proxy(kamailio_factory, str(pool.path),
                                 name="tls%d" % i, address=addr, defines=d))
    pool.ks = ks
    pool.wait_mesh()
    wait_both_up(ks)
    ks[0].rpc("genesys_ha.switchover", "SIPS_A")
    took = wait_active(ks[1:], "SIPS_A", "backup")
    assert took < 0.05, took
    for k in ks:
        assert invite_goes_to(k, pri, bak) == "backup"
    # the proxies talk over TLS connections to each other's 5061
    conns = ks[1].rpc_json("core.tcp_list")
    assert any(c["type"] == "TLS" for c in conns), conns
    ips = {c[end] for c in conns for end in ("src_ip", "dst_ip")}
    assert pool.addrs[0] in ips or pool.addrs[2] in ips, conns


def test_relay_failure_decision_is_the_pools(
        tmp_path, kamailio_factory, peer_factory):
    """The primary answers OPTIONS but not INVITEs: the INVITE relayed by
    proxy 0 times out, proxy 0 fails over and switches (relay-failure);
    the two others, whose probes still see the primary alive, follow."""
    pri, bak = peer_factory(), peer_factory()
    pool = three_proxies(tmp_path, kamailio_factory, pri, bak)
    ks = pool.ks
    pri.answer_requests = False
    status, _ = hu.udp_request(ks[0], "INVITE", "sip:2000@%s" % ks[0].address,
                               timeout=6)
    assert status and status.startswith("SIP/2.0 200"), status
    assert len(bak.requests("INVITE")) == 1
    p0 = hu.pool(ks[0])["SIPS_A"]
    assert p0["last_switchover"]["trigger"] == "relay-failure", p0
    wait_active(ks[1:], "SIPS_A", "backup")
    for k in ks[1:]:
        p = hu.pool(k)["SIPS_A"]
        assert p["members"]["primary"]["state"] == "active", p
        assert p["last_switchover"]["trigger"] == "peer", p
        assert invite_goes_to(k, pri, bak) == "backup"
