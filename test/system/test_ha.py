"""genesys_ha system tests: the reference kamailio.cfg with a pool file,
SIP Servers simulated by SIPp (or a UDP peer where one process must answer
and send), phones by SIPp; everything on 127.x loopback addresses."""

import re
import time

import pytest

import harness
import ha_util as hu
from cfgbuild import kamailio_cfg
from ha_util import pool, wait_pool


def pair_pool(tmp_path, pri, bak, name="SIPS_A", **kw):
    return hu.write_pool(tmp_path / "pool.xml",
                         [(name, "sip:%s:5060" % pri, "sip:%s:5060" % bak, None)],
                         **kw)


def pair_proxy(tmp_path, kamailio_factory, pri, bak):
    """a proxy for the pair SIPS_A (pri, bak), its backup seen active and
    the pair up"""
    k = hu.start_proxy(kamailio_factory, pair_pool(tmp_path, pri.address,
                                                   bak.address))
    wait_pool(k, lambda p: p["SIPS_A"]["members"]["backup"]["state"] == "active"
              and p["SIPS_A"]["state"] == "up", what="both active")
    return k


def wait_received(sipp, prefix, n, timeout=5.0):
    """Wait until a running SIPp has received n messages starting with prefix."""
    deadline = time.monotonic() + timeout
    while True:
        got = sipp.result(None).received(prefix)
        if len(got) >= n or time.monotonic() > deadline:
            return got
        time.sleep(0.05)


def active_is(name, role, state="up"):
    return lambda p: (p[name]["active"] == role and p[name]["state"] == state)


def test_calls_go_to_primary_then_backup_after_primary_dies(
        tmp_path, kamailio_factory, sipp_factory):
    """Calls reach the primary; the primary dies (killed) and the promoted
    backup answers: new calls reach the backup; a call set up before the
    switchover is torn down with a BYE whose Request-URI names the old
    primary, and that BYE reaches the backup."""
    pri_addr, bak_addr = harness.next_address(), harness.next_address()
    k = hu.start_proxy(kamailio_factory, pair_pool(tmp_path, pri_addr, bak_addr))
    pri = hu.sipserver(sipp_factory, tmp_path, "primary", address=pri_addr).start()
    wait_pool(k, lambda p: p["SIPS_A"]["members"]["primary"]["state"] == "active",
              what="primary active")

    # 1. a call goes to the primary
    r = hu.phone(sipp_factory, k, "call1").run()
    assert r.rc == 0 and r.successful == 1, r.screen
    # 2. a long call is set up on the primary
    long_call = hu.phone(sipp_factory, k, "long", hold_ms=6000).start()
    wait_received(pri, "ACK ", 2)
    # 3. the primary dies; the backup is promoted (starts answering)
    pri.kill()
    res_pri = pri.result(None)
    assert len(res_pri.received("INVITE ")) == 2, res_pri.messages
    bak = hu.sipserver(sipp_factory, tmp_path, "backup", address=bak_addr).start()
    p = wait_pool(k, active_is("SIPS_A", "backup"), timeout=6,
                  what="backup active")
    assert p["SIPS_A"]["last_switchover"]["trigger"] in ("no-answer", "recovery")
    # 4. new calls reach the backup
    r = hu.phone(sipp_factory, k, "call2").run()
    assert r.rc == 0 and r.successful == 1, r.screen
    # 5. the old call ends: its BYE names the old primary, reaches the backup
    r = long_call.wait()
    assert r.rc == 0 and r.successful == 1, r.screen
    bak.kill()
    res_bak = bak.result(None)
    assert len(res_bak.received("INVITE ")) == 1, res_bak.messages
    byes = res_bak.received("BYE ")
    assert len(byes) == 2, res_bak.messages
    assert any(b["text"].startswith("BYE sip:sips@%s:5060" % pri_addr)
               for b in byes), [b["text"][:80] for b in byes]
    log = k.log_text()
    assert re.search(r"SIP Server pair 'SIPS_A': switchover from primary "
                     r"sip:%s:5060 to backup sip:%s:5060" % (pri_addr, bak_addr),
                     log), log[-3000:]
    assert "event genesys-ha:switchover: pair SIPS_A now uses backup" in log
    assert "40004 SPR_PROXY_INITIALIZED" in log


def peers(*kw):
    out = []
    for k in kw:
        p = hu.Peer(**k)
        p.start()
        out.append(p)
    return out


@pytest.mark.parametrize("backup_code,method", [
    (503, "INVITE"), (503, "OPTIONS"), (200, "INVITE"), (200, "OPTIONS"),
    (None, "MESSAGE")])
def test_forged_request_from_backup_never_switches(
        tmp_path, kamailio_factory, peer_factory, backup_code, method):
    """Issue 9.4: one spoofed UDP request "from" the backup's address and
    port (the backup keeps its socket: the datagram comes from a raw
    socket) makes the proxy probe both members, and nothing else: the
    primary answers, so the pair stays on it and new calls still reach it.
    Before: a backup answering 503 made the pair inactive (every new call
    503), a backup answering 200 took the pair over."""
    pri = peer_factory()
    bak = peer_factory(options_code=backup_code)
    ep = peer_factory()                         # an endpoint
    k = hu.start_proxy(kamailio_factory, pair_pool(tmp_path, pri.address,
                                                   bak.address))
    bstate = {503: "inactive", 200: "active", None: "down"}[backup_code]
    wait_pool(k, lambda p: p["SIPS_A"]["members"]["backup"]["state"] == bstate
              and p["SIPS_A"]["members"]["primary"]["state"] == "active",
              what="primary active, backup %s" % bstate)
    n_probes = len(bak.requests("OPTIONS")), len(pri.requests("OPTIONS"))
    n_req = len(ep.requests(method))
    hu.forged_request((bak.address, 5060), (k.address, k.port), method,
                      "sip:1001@%s:%d" % (ep.address, ep.port))
    k.wait_log(r"SIP Server pair 'SIPS_A': request from the backup "
               r"sip:%s:5060: probing both members now" % bak.address)
    k.wait_log(r"SIP Server pair 'SIPS_A': request from the backup "
               r"sip:%s:5060 not confirmed \(rule not met; probes after it: "
               r"backup %s, primary active" % (bak.address, bstate))
    assert len(ep.requests(method)) == n_req + 1   # relayed to its R-URI
    # both were probed at once (periodic probes: every second here)
    assert len(bak.requests("OPTIONS")) > n_probes[0]
    assert len(pri.requests("OPTIONS")) > n_probes[1]
    p = pool(k)
    assert p["SIPS_A"]["active"] == "primary", p
    assert p["SIPS_A"]["state"] == "up", p
    assert p["SIPS_A"]["switchovers"] == 0, p
    # new calls still reach the primary
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status and status.startswith("SIP/2.0 200"), status
    assert len(pri.requests("INVITE")) == 1 and not bak.requests("INVITE")
    assert "switchover from" not in k.log_text()


@pytest.mark.parametrize("primary_code", [None, 503])
def test_request_from_backup_switches_only_when_backup_answers(
        tmp_path, kamailio_factory, peer_factory, primary_code):
    """Seed 003, issue 9.4: the primary stopped answering (not detected yet:
    fail_threshold 2, periodic probes every 30 s), or answers 503 (demoted),
    and the promoted backup answers OPTIONS and sends a request: the probes
    sent after the request show the backup answering and the primary silent
    (or 503), so the pair switches at once (trigger request-from-backup),
    long before any periodic probe would have noticed."""
    pri = peer_factory()
    bak = peer_factory(options_code=None)      # a Genesys backup ignores SIP
    ep = peer_factory()                         # an endpoint
    oos = dict(hu.FAST_OOS, oos_check=30, oos_force=30, fail_threshold=2)
    k = hu.start_proxy(kamailio_factory, pair_pool(tmp_path, pri.address,
                                                   bak.address), oos=oos)
    wait_pool(k, lambda p: p["SIPS_A"]["members"]["backup"]["state"] == "down"
              and p["SIPS_A"]["members"]["primary"]["state"] == "active",
              what="primary active, backup down", timeout=12)
    # the backup is promoted, the primary goes silent
    pri.options_code = primary_code
    bak.options_code = 200
    t0 = time.monotonic()
    reply = bak.send_request((k.address, k.port), "MESSAGE",
                             "sip:1001@%s:%d" % (ep.address, ep.port))
    assert reply and reply.startswith("SIP/2.0 200"), reply
    assert len(ep.requests("MESSAGE")) == 1      # relayed to its R-URI
    p = wait_pool(k, active_is("SIPS_A", "backup"), timeout=3,
                  what="backup active")
    # one probe timeout (400 ms) after the request, not a 30 s period
    assert time.monotonic() - t0 < 2.0
    assert p["SIPS_A"]["last_switchover"]["trigger"] == "request-from-backup"
    # the primary is not counted down: the request made the switch
    assert p["SIPS_A"]["members"]["primary"]["state"] == (
        "inactive" if primary_code == 503 else "active"), p
    # and new dialogs go to the backup now
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status and status.startswith("SIP/2.0 200"), status
    assert len(bak.requests("INVITE")) == 1 and not pri.requests("INVITE")


def test_both_silent_503_and_40001_then_recovery(
        tmp_path, kamailio_factory, peer_factory):
    pri = peer_factory(options_code=None)
    bak_addr = harness.next_address()    # nothing listens: ICMP unreachable
    k = hu.start_proxy(kamailio_factory, pair_pool(tmp_path, pri.address,
                                                   bak_addr))
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "out-of-service",
              what="pair out of service")
    k.wait_log(r"40001 SPR_SIPS_HA_PAIR_UNAVAILABLE: SIP Server HA pair "
               r"\(%s:5060\) is unavailable" % re.escape(pri.address))
    k.wait_log(r"event genesys-ha:pair-down: pair SIPS_A is out of service")
    status, text = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status.startswith("SIP/2.0 503"), status
    assert re.search(r"^Retry-After: 5\r?$", text, re.M), text
    assert not pri.requests("INVITE")
    # the primary answers again: the pair recovers
    pri.options_code = 200
    wait_pool(k, active_is("SIPS_A", "primary"), timeout=5, what="pair up")
    k.wait_log(r"SIP Server pair 'SIPS_A' is available again: primary")
    k.wait_log(r"event genesys-ha:pair-up: pair SIPS_A is back")
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status.startswith("SIP/2.0 200"), status
    assert len(pri.requests("INVITE")) == 1


def test_primary_503_to_options_no_new_dialogs_in_dialog_continues(
        tmp_path, kamailio_factory, sipp_factory):
    """SIP Server inactive state (seed 001): 503 to OPTIONS = no new dialogs,
    requests within existing dialogs still go to it."""
    pri_addr, bak_addr = harness.next_address(), harness.next_address()
    k = hu.start_proxy(kamailio_factory, pair_pool(tmp_path, pri_addr, bak_addr))
    pri = hu.sipserver(sipp_factory, tmp_path, "primary", address=pri_addr).start()
    wait_pool(k, active_is("SIPS_A", "primary"), what="primary up")
    call = hu.phone(sipp_factory, k, "long", hold_ms=5000).start()
    wait_received(pri, "ACK ", 1)
    # the primary goes inactive: it answers OPTIONS with 503
    pri.kill()
    pri2 = hu.sipserver(sipp_factory, tmp_path, "primary503", address=pri_addr,
                        code=503).start()
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "inactive",
              what="pair inactive")
    status, text = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status.startswith("SIP/2.0 503"), status
    assert "Retry-After:" in text
    res = call.wait()
    assert res.rc == 0 and res.successful == 1, res.screen
    pri2.kill()
    r2 = pri2.result(None)
    assert len(r2.received("BYE ")) == 1, r2.messages
    assert not r2.received("INVITE ")
    assert "is inactive: primary sip:%s:5060 answers 503" % pri_addr in k.log_text()


def branches(peer, method):
    return {re.search(r"branch=([^;\s]+)", t).group(1)
            for t in peer.requests(method)}


def test_failure_route_failover_to_backup(
        tmp_path, kamailio_factory, sipp_factory, peer_factory):
    """A relayed INVITE to the primary times out: the same transaction tries
    the backup (known alive), the caller sees one successful call, the pair
    switches (trigger relay-failure)."""
    pri = peer_factory(answer_requests=False)   # answers OPTIONS only
    bak = peer_factory()
    k = pair_proxy(tmp_path, kamailio_factory, pri, bak)
    r = hu.phone(sipp_factory, k, "call").run()
    assert r.rc == 0 and r.successful == 1, r.screen
    assert len(branches(pri, "INVITE")) == 1
    assert len(branches(bak, "INVITE")) == 1
    assert len(bak.requests("BYE")) == 1
    p = pool(k)
    assert p["SIPS_A"]["active"] == "backup", p
    assert p["SIPS_A"]["last_switchover"]["trigger"] == "relay-failure"
    assert p["SIPS_A"]["failovers"] == 1
    k.wait_log(r"pair 'SIPS_A': request to primary sip:%s:5060 failed \(no "
               r"answer\): retrying on backup" % re.escape(pri.address))


def test_failover_is_bounded(tmp_path, kamailio_factory, peer_factory):
    """Neither member answers the INVITE: one try each, then a final error."""
    pri = peer_factory(answer_requests=False)
    bak = peer_factory(answer_requests=False)
    k = pair_proxy(tmp_path, kamailio_factory, pri, bak)
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address,
                               timeout=8)
    assert status and status.startswith("SIP/2.0 408"), status
    assert len(branches(pri, "INVITE")) == 1
    assert len(branches(bak, "INVITE")) == 1


def test_operator_switchover_rpc(tmp_path, kamailio_factory, peer_factory):
    pri = peer_factory()
    bak = peer_factory()
    k = pair_proxy(tmp_path, kamailio_factory, pri, bak)
    out = k.rpc_json("genesys_ha.switchover", "SIPS_A")
    assert "active member is now the backup" in out
    p = pool(k)
    assert p["SIPS_A"]["active"] == "backup"
    assert p["SIPS_A"]["last_switchover"]["trigger"] == "operator"
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status.startswith("SIP/2.0 200")
    assert len(bak.requests("INVITE")) == 1 and not pri.requests("INVITE")
    k.wait_log(r"event genesys-ha:switchover: pair SIPS_A now uses backup "
               r"sip:%s:5060 \(was sip:%s:5060, trigger operator\)"
               % (re.escape(bak.address), re.escape(pri.address)))
    # bad arguments
    assert k.rpc_fault("genesys_ha.switchover").code == 400
    r = k.rpc_fault("genesys_ha.switchover", "NOPE")
    assert r.code == 404 and "unknown SIP Server pair" in r.message, r
    # the primary dies: switching back to it is refused
    pri.options_code = None
    wait_pool(k, lambda p: p["SIPS_A"]["members"]["primary"]["state"] == "down",
              what="primary down")
    r = k.rpc_fault("genesys_ha.switchover", "SIPS_A")
    assert r.code == 409, r
    assert pool(k)["SIPS_A"]["active"] == "backup"


def test_reload_good_and_broken(tmp_path, kamailio_factory, peer_factory):
    """A broken file is refused with file:line and the running pool, its
    member states and its routing stay; a good file replaces the pool
    atomically, member states survive for members that stay, new members
    are probed, removed ones are released."""
    a1, a2, b1, b2, c1, c2 = (peer_factory() for _ in range(6))
    path = tmp_path / "pool.xml"
    hu.write_pool(path, [("SIPS_A", a1.uri, a2.uri, None),
                         ("SIPS_C", c1.uri, c2.uri, None)])
    k = hu.start_proxy(kamailio_factory, str(path),
                       defines={"SERVING_SIPSERVER": '"SIPS_A"'})
    wait_pool(k, lambda p: p["SIPS_A"]["members"]["backup"]["state"] == "active"
              and p["SIPS_C"]["members"]["backup"]["state"] == "active",
              what="all active")
    k.rpc("genesys_ha.switchover", "SIPS_A")     # state to carry over
    before = pool(k)
    good = path.read_text()

    # broken: not well-formed, at line 4
    path.write_text(good.replace('<sipserver name="SIPS_C">',
                                 '<sipserver name="SIPS_C"', 1))
    # faults with a path through kamcmd: jsonrpcs cuts a fault's text to
    # 127 characters
    r = k.rpc_raw("genesys_ha.reload")
    out = r.stdout + r.stderr
    assert "500" in out and "%s:" % path in out and "not well-formed" in out, out
    assert "40003" in out and "running pool is unchanged" in out
    k.wait_log(r"40003 SPR_ERROR_READING_CONFIG_DATA: %s:\d+: not well-formed"
               % re.escape(str(path)))
    # broken: unknown host in a new pair
    path.write_text(good.replace("</pool>", '  <sipserver name="SIPS_X">\n'
                                 '    <primary uri="sip:no-such-host.invalid"/>\n'
                                 '    <backup uri="sip:127.0.0.1:5999"/>\n'
                                 '  </sipserver>\n</pool>'))
    r = k.rpc_raw("genesys_ha.reload")
    out = r.stdout + r.stderr
    assert "40005" in out and "no-such-host.invalid" in out, out
    after = pool(k)
    assert after["SIPS_A"] == before["SIPS_A"]
    assert "SIPS_X" not in after
    assert after["_pool"]["generation"] == 1, after["_pool"]
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status.startswith("SIP/2.0 200") and len(a2.requests("INVITE")) == 1

    # good: SIPS_A stays, SIPS_C goes, SIPS_B comes
    hu.write_pool(path, [("SIPS_A", a1.uri, a2.uri, None),
                         ("SIPS_B", b1.uri, b2.uri, None)])
    out = k.rpc_json("genesys_ha.reload")
    assert "2 SIP Server pairs" in out and "generation 2" in out, out
    p = pool(k)
    assert "SIPS_C" not in p and "SIPS_B" in p
    # SIPS_A kept its active member, states, switchover and counters
    for key in ("active", "state", "since", "switchovers"):
        assert p["SIPS_A"][key] == pool_val(after, "SIPS_A", key), key
    assert p["SIPS_A"]["new_dialogs"] == after["SIPS_A"]["new_dialogs"] + 1
    assert p["SIPS_A"]["members"]["primary"]["since"] == \
        before["SIPS_A"]["members"]["primary"]["since"]
    assert p["SIPS_A"]["last_switchover"]["trigger"] == "operator"
    wait_pool(k, lambda p: p["SIPS_B"]["members"]["backup"]["state"] == "active",
              what="new pair probed")
    # the removed pair's members are no longer probed
    targets = [t["uri"] for t in k.rpc_json("genesys_oos.list")]
    assert not any(c1.address in t for t in targets), targets
    assert any(b1.address in t for t in targets), targets
    n = len(c1.requests("OPTIONS"))
    # two more probes of a kept member: a whole period without one to c1
    b1.wait_requests("OPTIONS", len(b1.requests("OPTIONS")) + 2, timeout=4)
    assert len(c1.requests("OPTIONS")) == n
    # routing follows the new pool
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status.startswith("SIP/2.0 200") and len(a2.requests("INVITE")) == 2


def pool_val(p, pair, key):
    return p[pair][key]


def test_forged_route_pair_id_refused(tmp_path, kamailio_factory, peer_factory):
    pri = peer_factory()
    bak = peer_factory()
    k = hu.start_proxy(kamailio_factory, pair_pool(tmp_path, pri.address,
                                                   bak.address))
    wait_pool(k, active_is("SIPS_A", "primary"), what="primary up")
    ruri = "sip:sips@%s:5060" % pri.address
    for gha in ("NO_SUCH_PAIR", "%zz", "SIPS%5FA", "", "SIPS_A*",
                "*1001", "SIPS_A*10*01", "SIPS_A*%4"):
        status, _ = hu.udp_request(
            k, "BYE", ruri, route="<sip:%s;lr;gha=%s>" % (k.address, gha))
        assert status and status.startswith("SIP/2.0 403"), (gha, status)
    time.sleep(0.3)     # what is tested: nothing forwarded in that time
    assert not pri.requests("BYE") and not bak.requests("BYE")
    k.wait_log(r"in-dialog BYE from [\d.]+:\d+ refused: unknown SIP Server "
               r"pair 'NO_SUCH_PAIR' in the Route header; not forwarded")
    k.wait_log(r"refused: malformed SIP Server pair id '%zz'")
    # the genuine id is routed
    status, _ = hu.udp_request(
        k, "BYE", ruri, route="<sip:%s;lr;gha=SIPS_A*1001>" % k.address)
    assert status and status.startswith("SIP/2.0 200"), status
    assert len(pri.requests("BYE")) == 1
    # a dialog recorded by 0.1.0 (";gha=<pair>;ghadn=<DN>") still routes by
    # its pair
    status, _ = hu.udp_request(
        k, "BYE", ruri, route="<sip:%s;lr;gha=SIPS_A;ghadn=1001>" % k.address)
    assert status and status.startswith("SIP/2.0 200"), status
    assert len(pri.requests("BYE")) == 2


BAD_POOLS = [
    ("not-well-formed",
     '<?xml version="1.0"?>\n<pool>\n  <sipserver name="A">\n</pool>\n',
     # the first libxml2 error (line 4), not the last one (line 5)
     {}, "40003 SPR_ERROR_READING_CONFIG_DATA",
     r"pool.xml:4: not well-formed XML: Opening and ending tag mismatch"),
    ("schema",
     '<?xml version="1.0"?>\n<pool>\n  <sipserver name="A">\n'
     '    <primary uri="sip:127.0.0.1:5998"/>\n  </sipserver>\n</pool>\n',
     {}, "40003 SPR_ERROR_READING_CONFIG_DATA",
     r"pool.xml:3: element <sipserver>: Element 'sipserver': Missing child"),
    ("duplicate",
     '<?xml version="1.0"?>\n<pool>\n'
     '  <sipserver name="A"><primary uri="sip:127.0.0.1:5901"/>'
     '<backup uri="sip:127.0.0.1:5902"/></sipserver>\n'
     '  <sipserver name="A"><primary uri="sip:127.0.0.1:5903"/>'
     '<backup uri="sip:127.0.0.1:5904"/></sipserver>\n</pool>\n',
     {}, "40003 SPR_ERROR_READING_CONFIG_DATA",
     r"pool.xml:4: element <sipserver>: duplicate name 'A' \(first at line 3\)"),
    ("bad-uri",
     '<?xml version="1.0"?>\n<pool>\n'
     '  <sipserver name="A"><primary uri="sip:127.0.0.1:5901;transport=xyz"/>'
     '<backup uri="sip:127.0.0.1:5902"/></sipserver>\n</pool>\n',
     {}, "40003 SPR_ERROR_READING_CONFIG_DATA",
     r"pool.xml:3: element <primary> of 'A': URI .* transport 'xyz'"),
    ("unknown-serving",
     '<?xml version="1.0"?>\n<pool>\n'
     '  <sipserver name="A"><primary uri="sip:127.0.0.1:5901"/>'
     '<backup uri="sip:127.0.0.1:5902"/></sipserver>\n</pool>\n',
     {"SERVING_SIPSERVER": '"B"'}, "40003 SPR_ERROR_READING_CONFIG_DATA",
     r"serving_sipserver 'B' is not a <sipserver> of the pool"),
    ("unresolvable",
     '<?xml version="1.0"?>\n<pool>\n'
     '  <sipserver name="A"><primary uri="sip:127.0.0.1:5901"/>\n'
     '    <backup uri="sip:no-such-host.invalid"/></sipserver>\n</pool>\n',
     {}, "40005 SPR_HOST_NOT_RESOLVED",
     r"pool.xml:4: element <backup> of 'A': cannot resolve host "
     r"'no-such-host.invalid'"),
    ("own-address",
     '<?xml version="1.0"?>\n<pool>\n  <proxies>\n'
     '    <proxy address="127.0.0.1:5060" site="east"/>\n  </proxies>\n'
     '  <sipserver name="A"><primary uri="sip:127.0.0.1:5901"/>'
     '<backup uri="sip:127.0.0.1:5902"/></sipserver>\n</pool>\n',
     {"OWN_ADDRESS": '"127.0.0.9:5060"'}, "40000 SPR_OWN_PROXY_ADDR_NOT_FOUND",
     r"own_address 127.0.0.9:5060 is not a <proxy> of the pool"),
]


@pytest.mark.parametrize("case", BAD_POOLS, ids=[c[0] for c in BAD_POOLS])
def test_bad_pool_file_refuses_start(tmp_path, case):
    name, text, defines, event, rx = case
    path = tmp_path / "pool.xml"
    path.write_text(text)
    d = {"POOL_FILE": '"%s"' % path}
    d.update(defines)
    k = harness.Kamailio(tmp_path / "k", cfg_text=hu.reference_cfg(), defines=d)
    with pytest.raises(harness.HarnessError):
        k.start(timeout=10)
    k.stop(check=False)
    log = k.log_text()
    assert re.search(event + r": .*" + rx, log), log[-2000:]
    assert "40004" not in log


def test_good_pool_with_own_address_starts(tmp_path, kamailio_factory,
                                           peer_factory):
    pri, bak = peer_factory(), peer_factory()
    addr = harness.next_address()
    path = hu.write_pool(tmp_path / "pool.xml",
                         [("SIPS_A", pri.uri, bak.uri, "east")],
                         proxies=[("%s:5060" % addr, "east"),
                                  ("127.0.0.1:5060", "west")])
    k = hu.start_proxy(kamailio_factory, path, address=addr,
                       defines={"OWN_ADDRESS": '"%s:5060"' % addr})
    k.wait_log(r"40004 SPR_PROXY_INITIALIZED: .* serving SIP Server 'SIPS_A', "
               r"site 'east'")
    proxies = pool(k)["_pool"]["proxies"]
    assert {"address": "%s:5060" % addr, "site": "east",
            "self": "yes"} in proxies, proxies


def refuses_start(workdir, cfg, pool_path):
    """kamailio with cfg and the pool must not start; returns its log"""
    k = harness.Kamailio(workdir, cfg_text=cfg,
                         defines={"POOL_FILE": '"%s"' % pool_path})
    with pytest.raises(harness.HarnessError):
        k.start(timeout=10)
    k.stop(check=False)
    return k.log_text()


def test_genesys_oos_required(tmp_path):
    path = pair_pool(tmp_path, "127.0.0.1", "127.0.0.2")
    cfg = hu.reference_cfg().replace('loadmodule "genesys_oos"\n', "")
    cfg = re.sub(r'modparam\("genesys_oos".*\n', "", cfg)
    log = refuses_start(tmp_path / "k", cfg, path)
    assert 'genesys_ha needs the genesys_oos module' in log


def test_multi_site_load_balancing_and_mwi(tmp_path, kamailio_factory,
                                           peer_factory):
    """geo-location east: endpoint calls are balanced round-robin over the
    available pairs of the site (never the west pair); an inter-site request
    from a west SIP Server naming an east pair's old primary reaches that
    pair's active member; MWI SUBSCRIBEs go to the east Feature Server that
    answers, never to the one that is down or to the west one."""
    e1p = peer_factory(options_code=None)
    e1b, e2p = peer_factory(), peer_factory()
    e2b = peer_factory(options_code=None)
    wp = peer_factory()
    wb = peer_factory(options_code=None)
    fs1, fs3 = peer_factory(), peer_factory()
    fs2_addr = harness.next_address()                 # down: nothing listens
    path = hu.write_pool(tmp_path / "pool.xml", [
        ("SIPS-E1", e1p.uri, e1b.uri, "east"),
        ("SIPS-E2", e2p.uri, e2b.uri, "east"),
        ("SIPS-W", wp.uri, wb.uri, "west")],
        fs=[("FS1", fs1.uri, "east"), ("FS2", "sip:%s:5060" % fs2_addr, "east"),
            ("FS3", fs3.uri, "west")])
    k = hu.start_proxy(kamailio_factory, path,
                       defines={"GEO_LOCATION": '"east"',
                                "LB_ALGORITHM": '"round-robin"'})
    wait_pool(k, lambda p: p["SIPS-E1"]["active"] == "backup"
              and p["SIPS-E1"]["state"] == "up"
              and p["SIPS-E2"]["state"] == "up" and p["SIPS-W"]["state"] == "up"
              and p["_fs"]["FS2"]["state"] == "down"
              and p["_fs"]["FS1"]["state"] == "active",
              what="pool settled")
    # endpoint calls: round-robin over the east pairs
    for i in range(4):
        status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
        assert status.startswith("SIP/2.0 200"), status
    assert len(e1b.requests("INVITE")) == 2, e1b.requests("INVITE")
    assert len(e2p.requests("INVITE")) == 2
    assert not wp.requests("INVITE") and not e1p.requests("INVITE")
    # inter-site: the west SIP Server sends through its pool to the east
    # pair, naming the pair's old primary
    reply = wp.send_request((k.address, k.port), "INVITE",
                            "sip:3000@%s:5060" % e1p.address)
    assert reply and reply.startswith("SIP/2.0 200"), reply
    got = e1b.requests("INVITE")
    assert len(got) == 3 and got[-1].startswith(
        "INVITE sip:3000@%s:5060 " % e1p.address), got[-1]
    assert re.search(r"^Record-Route: <sip:%s[^>]*;gha=SIPS-E1\*3000"
                     % re.escape(k.address), got[-1], re.M), got[-1]
    # ... or naming the pair itself
    reply = wp.send_request((k.address, k.port), "MESSAGE", "sip:3000@SIPS-E2")
    assert reply and reply.startswith("SIP/2.0 200"), reply
    assert len(e2p.requests("MESSAGE")) == 1
    # MWI
    for i in range(4):
        status, _ = hu.udp_request(k, "SUBSCRIBE", "sip:1001@%s" % k.address,
                                   headers={"Event": "message-summary",
                                            "Expires": "60"})
        assert status.startswith("SIP/2.0 200"), status
    assert len(fs1.requests("SUBSCRIBE")) == 4
    assert not fs3.requests("SUBSCRIBE")
    assert not e1b.requests("SUBSCRIBE") and not e2p.requests("SUBSCRIBE")
    # other SUBSCRIBEs go to the SIP Servers
    status, _ = hu.udp_request(k, "SUBSCRIBE", "sip:1001@%s" % k.address,
                               headers={"Event": "presence", "Expires": "60"})
    assert status.startswith("SIP/2.0 200"), status
    assert len(fs1.requests("SUBSCRIBE")) == 4


def test_hash_load_balancing_keeps_each_dn_on_its_pair(
        tmp_path, kamailio_factory, peer_factory):
    """Issue 9.9 (seed 001: every message of one session to the same SIP
    Server): lb_algorithm "hash" sends every REGISTER, SUBSCRIBE and INVITE
    of one DN (From user) to the same pair of the site; different DNs
    spread over the pairs; when a pair goes out of service only its DNs
    move (each to one other pair, consistently), the others stay; when it
    comes back they return. Round-robin (the old only choice) sends the
    three requests of a DN to three different pairs."""
    names = ["SIPS-E%d" % i for i in range(1, 5)]
    pris = {n: peer_factory() for n in names}
    baks = {n: peer_factory(options_code=None) for n in names}
    path = hu.write_pool(tmp_path / "pool.xml", [
        (n, pris[n].uri, baks[n].uri, "east") for n in names])
    # the reference configuration's default (LB_ALGORITHM "hash")
    k = hu.start_proxy(kamailio_factory, path,
                       defines={"GEO_LOCATION": '"east"'})
    wait_pool(k, lambda p: all(p[n]["state"] == "up" for n in names),
              what="all pairs up")
    dns = [str(3000 + i) for i in range(24)]

    def where(dn, method):
        """the pairs whose primary got a `method` from `dn`"""
        tag = "From: <sip:%s@" % dn
        return {n for n in names
                if any(tag in r for r in pris[n].requests(method))}

    def send_all(dn, methods=("REGISTER", "SUBSCRIBE", "INVITE")):
        for m in methods:
            hdrs = {"Event": "presence", "Expires": "60"} \
                if m == "SUBSCRIBE" else {"Expires": "60"} \
                if m == "REGISTER" else None
            ruri = ("sip:%s" % k.address if m == "REGISTER"
                    else "sip:2000@%s" % k.address)
            status, _ = hu.udp_request(k, m, ruri, headers=hdrs,
                                       body_from=dn)
            assert status and status.startswith("SIP/2.0 200"), (m, status)

    home = {}
    for dn in dns:
        send_all(dn)
        send_all(dn, ("INVITE",))
        got = where(dn, "REGISTER") | where(dn, "SUBSCRIBE") | \
            where(dn, "INVITE")
        assert len(got) == 1, (dn, got)       # one DN, one pair
        home[dn] = got.pop()
    assert len(set(home.values())) >= 3, home      # DNs spread
    # the pair holding the most DNs goes out of service
    gone = max(names, key=lambda n: sum(1 for v in home.values() if v == n))
    moved = [dn for dn in dns if home[dn] == gone]
    pris[gone].stop()                     # ICMP port unreachable
    wait_pool(k, lambda p: p[gone]["state"] == "out-of-service",
              what="%s out of service" % gone)
    for n in names:
        with pris[n]._lock:
            pris[n].received.clear()
    for dn in dns:
        send_all(dn)
        got = where(dn, "REGISTER") | where(dn, "SUBSCRIBE") | \
            where(dn, "INVITE")
        assert len(got) == 1, (dn, got)
        if dn in moved:
            assert got != {gone}, dn
        else:
            assert got == {home[dn]}, (dn, home[dn], got)   # did not move
    # it comes back: its DNs return to it
    back = peer_factory(address=pris[gone].address)
    wait_pool(k, lambda p: p[gone]["state"] == "up", what="%s back" % gone)
    for dn in moved:
        send_all(dn, ("INVITE",))
        assert any("From: <sip:%s@" % dn in r
                   for r in back.requests("INVITE")), dn


# genesys_oos probing fast, the pool in POOL_FILE
HA_MODULES = ("kex", "tm", "sl", "rr", "pv", "xlog", "textops", "genesys_oos",
              "genesys_ha")
HA_PARAMS = """modparam("genesys_oos", "oos_check", 1)
modparam("genesys_oos", "oos_force", 1)
modparam("genesys_oos", "oos_timeout", 400)
modparam("genesys_ha", "pool_file", POOL_FILE)
"""

SCRIPT_CFG = kamailio_cfg(children=1, modules=HA_MODULES, body=HA_PARAMS + """\
modparam("genesys_ha", "serving_sipserver", "SIPS_A")
modparam("genesys_ha", "lb_algorithm", "random")

request_route {
	switch ($hdr(X-Fn)) {
	case "select":
		ha_select("$hdr(X-Arg)");
		break;
	case "serving":
		ha_select_serving();
		break;
	case "site":
		ha_select_site("$hdr(X-Arg)");
		break;
	case "fs":
		ha_select_feature_server();
		break;
	case "from":
		ha_from_sipserver();
		break;
	default:
		sl_send_reply("400", "no X-Fn");
		exit;
	}
	$var(rc) = $rc;
	append_to_reply("X-Rc: $var(rc)\\r\\nX-Du: $du\\r\\nX-Pair: $ha(pair)\\r\\nX-Role: $ha(role)\\r\\nX-Member: $ha(member)\\r\\nX-State: $ha(state)\\r\\n");
	sl_send_reply("200", "tested");
	exit;
}
""")


def fn(k, name, arg="", peer=None):
    hdrs = {"X-Fn": name, "X-Arg": arg}
    if peer:
        text = peer.send_request((k.address, k.port), "MESSAGE",
                                 "sip:x@%s" % k.address, headers=hdrs,
                                 full=True)
    else:
        status, text = hu.udp_request(k, "MESSAGE", "sip:x@%s" % k.address,
                                      headers=hdrs)
    assert text and text.startswith("SIP/2.0 200"), text
    return dict(re.findall(r"^(X-[A-Za-z]+): ?(.*?)\r?$", text, re.M))


def test_script_functions_return_codes_and_pvs(tmp_path, kamailio_factory,
                                               peer_factory):
    pri, bak = peer_factory(), peer_factory(options_code=None)
    cp, cb = peer_factory(options_code=None), peer_factory(options_code=None)
    path = hu.write_pool(tmp_path / "pool.xml", [
        ("SIPS_A", pri.uri, bak.uri, "east"),
        ("SIPS_C", cp.uri, cb.uri, "west")],
        fs=[("FS1", "sip:%s:5060" % harness.next_address(), "east")])
    k = kamailio_factory(cfg_text=SCRIPT_CFG,
                         defines={"POOL_FILE": '"%s"' % path})
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "up"
              and p["SIPS_C"]["state"] == "out-of-service"
              and p["_fs"]["FS1"]["state"] == "down", what="settled")
    r = fn(k, "select", "SIPS_A")
    assert r["X-Rc"] == "1" and r["X-Du"] == "sip:%s:5060" % pri.address, r
    assert (r["X-Pair"], r["X-Role"], r["X-Member"], r["X-State"]) == \
        ("SIPS_A", "primary", pri.uri, "up"), r
    r = fn(k, "serving")
    assert r["X-Rc"] == "1" and r["X-Pair"] == "SIPS_A"
    assert fn(k, "select", "NOPE")["X-Rc"] == "-3"
    r = fn(k, "select", "SIPS_C")
    assert r["X-Rc"] == "-1" and r["X-State"] == "out-of-service", r
    assert fn(k, "site", "west")["X-Rc"] == "-1"      # its only pair is down
    assert fn(k, "site", "mars")["X-Rc"] == "-3"      # no pair in that site
    assert fn(k, "site", "east")["X-Pair"] == "SIPS_A"
    assert fn(k, "fs")["X-Rc"] == "-1"                # its only FS is down
    assert fn(k, "from")["X-Rc"] == "-4"              # not a pool member
    r = fn(k, "from", peer=pri)
    assert (r["X-Rc"], r["X-Pair"], r["X-Role"]) == ("1", "SIPS_A", "primary"), r
    # statistics
    st = k.statistics("genesys_ha:")
    assert st["new_dialogs"] >= 1, st
    assert st["rejected"] >= 1, st


def test_hash_key_is_a_pseudo_variable_format(tmp_path, kamailio_factory,
                                             peer_factory):
    """lb_hash_key: any pseudo-variable format is the key (here a header);
    the same key picks the same pair whatever else the request carries, a
    request without a key goes round-robin."""
    peers_ = [(peer_factory(), peer_factory(options_code=None))
              for _ in range(3)]
    path = hu.write_pool(tmp_path / "pool.xml", [
        ("SIPS_%d" % i, p.uri, b.uri, "east")
        for i, (p, b) in enumerate(peers_)])
    cfg = SCRIPT_CFG.replace(
        'modparam("genesys_ha", "lb_algorithm", "random")',
        'modparam("genesys_ha", "lb_algorithm", "hash")\n'
        'modparam("genesys_ha", "lb_hash_key", "$hdr(X-Key)")').replace(
        'modparam("genesys_ha", "serving_sipserver", "SIPS_A")\n', "")
    assert '"lb_hash_key", "$hdr(X-Key)"' in cfg
    k = kamailio_factory(cfg_text=cfg, defines={"POOL_FILE": '"%s"' % path})
    wait_pool(k, lambda p: all(p["SIPS_%d" % i]["state"] == "up"
                               for i in range(3)), what="pairs up")

    def site(key=None, dn="1001"):
        hdrs = {"X-Fn": "site", "X-Arg": "east"}
        if key is not None:
            hdrs["X-Key"] = key
        status, text = hu.udp_request(k, "MESSAGE", "sip:x@%s" % k.address,
                                      headers=hdrs, body_from=dn)
        assert status and status.startswith("SIP/2.0 200"), text
        r = dict(re.findall(r"^(X-[A-Za-z]+): ?(.*?)\r?$", text, re.M))
        assert r["X-Rc"] == "1", r
        return r["X-Pair"]

    picks = {key: site(key) for key in ("k%d" % i for i in range(12))}
    for key, pair in picks.items():
        for dn in ("1002", "1003"):
            assert site(key, dn) == pair, (key, dn)
    assert len(set(picks.values())) >= 2, picks
    # no key: round-robin over the three pairs
    assert len({site(None) for _ in range(3)}) == 3


def test_in_dialog_request_fails_over_before_detection(
        tmp_path, kamailio_factory, peer_factory):
    """The active member died a moment ago and probing has not noticed yet:
    an in-dialog BYE (Request-URI naming it) times out and is retried on
    the other member within the same transaction."""
    pri = peer_factory(answer_requests=False)   # still answers OPTIONS
    bak = peer_factory()
    k = pair_proxy(tmp_path, kamailio_factory, pri, bak)
    status, _ = hu.udp_request(
        k, "BYE", "sip:sips@%s:5060" % pri.address,
        route="<sip:%s;lr;gha=SIPS_A*1001>" % k.address, timeout=6)
    assert status and status.startswith("SIP/2.0 200"), status
    assert len(branches(pri, "BYE")) == 1 and len(bak.requests("BYE")) == 1
    assert bak.requests("BYE")[0].startswith("BYE sip:sips@%s:5060 " % pri.address)


KEMI_CFG = kamailio_cfg(
    children=1, modules=("kex", "tm", "sl", "rr", "pv", "textops", "app_jsdt",
                         "genesys_oos", "genesys_ha"),
    body='modparam("app_jsdt", "load", KEMI_SCRIPT)\n' + HA_PARAMS
    + 'modparam("genesys_ha", "event_callback", "ksr_genesys_ha_event")\n'
    'cfgengine "jsdt"\n')

KEMI_JS = r"""
function ksr_request_route() {
	var fn = KSR.pv.get("$hdr(X-Fn)");
	var rc = -100;
	if (fn == "serving") {
		rc = KSR.genesys_ha.ha_select_serving();
	} else if (fn == "select") {
		rc = KSR.genesys_ha.ha_select(KSR.pv.get("$hdr(X-Arg)"));
	}
	KSR.hdr.append_to_reply("X-Rc: " + rc + "\r\nX-Du: " + KSR.pv.get("$du")
		+ "\r\nX-Pair: " + KSR.pv.get("$ha(pair)") + "\r\n");
	KSR.sl.sl_send_reply(200, "tested");
}

function ksr_genesys_ha_event(evname) {
	KSR.info("KEMI-EVENT " + evname + " pair=" + KSR.pv.get("$ha(pair)")
		+ " trigger=" + KSR.pv.get("$ha(trigger)") + "\n");
}
"""


def test_kemi_exports_and_event_callback(tmp_path, kamailio_factory,
                                         peer_factory):
    pri, bak = peer_factory(), peer_factory()
    path = pair_pool(tmp_path, pri.address, bak.address)
    js = tmp_path / "ha.js"
    js.write_text(KEMI_JS)
    k = kamailio_factory(cfg_text=KEMI_CFG,
                         defines={"POOL_FILE": '"%s"' % path,
                                  "KEMI_SCRIPT": '"%s"' % js})
    wait_pool(k, lambda p: p["SIPS_A"]["members"]["backup"]["state"] == "active"
              and p["SIPS_A"]["state"] == "up", what="both active")
    r = fn(k, "serving")
    assert (r["X-Rc"], r["X-Du"], r["X-Pair"]) == \
        ("1", "sip:%s:5060" % pri.address, "SIPS_A"), r
    assert fn(k, "select", "NOPE")["X-Rc"] == "-3"
    k.rpc("genesys_ha.switchover", "SIPS_A")
    k.wait_log(r"KEMI-EVENT genesys-ha:switchover pair=SIPS_A trigger=operator")
    assert fn(k, "serving")["X-Du"] == "sip:%s:5060" % bak.address


def test_register_goes_to_the_serving_pair(tmp_path, kamailio_factory,
                                           peer_factory):
    """SIP Server is the registrar: REGISTERs from endpoints go to the
    serving pair's active member like any endpoint request."""
    pri, bak = peer_factory(), peer_factory()
    k = pair_proxy(tmp_path, kamailio_factory, pri, bak)
    status, _ = hu.udp_request(k, "REGISTER", "sip:%s" % k.address,
                               headers={"Expires": "60"})
    assert status.startswith("SIP/2.0 200"), status
    assert len(pri.requests("REGISTER")) == 1 and not bak.requests("REGISTER")
    k.rpc("genesys_ha.switchover", "SIPS_A")
    status, _ = hu.udp_request(k, "REGISTER", "sip:%s" % k.address,
                               headers={"Expires": "60"})
    assert status.startswith("SIP/2.0 200"), status
    assert len(bak.requests("REGISTER")) == 1
    # OPTIONS to the proxy itself (SIP Server's oos-check of its proxies)
    status, _ = hu.udp_request(k, "OPTIONS", "sip:%s" % k.address)
    assert status.startswith("SIP/2.0 200"), status
    assert not pri.requests("OPTIONS sip:%s" % k.address)


def test_tcp_members_with_double_record_route(tmp_path, kamailio_factory,
                                              sipp_factory):
    """SIP Servers on TCP (";transport=tcp" in the pool file), phones on
    UDP: double Record-Route both carry the pair; the call and its BYE work,
    also after a switchover to the backup."""
    path, pri, bak = hu.tcp_sipp_pair(sipp_factory, tmp_path)
    k = hu.start_proxy(kamailio_factory, path)
    wait_pool(k, lambda p: p["SIPS_T"]["members"]["backup"]["state"] == "active"
              and p["SIPS_T"]["state"] == "up", what="both active")
    r = hu.phone(sipp_factory, k, "call1").run()
    assert r.rc == 0 and r.successful == 1, r.screen
    inv = wait_received(pri, "INVITE ", 1)[0]["text"]
    rrs = re.findall(r"^Record-Route: (.*)$", inv, re.M)
    # the pair and the caller's DN (the From user, 1001), seed 001
    assert len(rrs) == 2 and all(";gha=SIPS_T*1001" in x for x in rrs), rrs
    assert any("transport=tcp" in x for x in rrs), rrs
    long_call = hu.phone(sipp_factory, k, "long", hold_ms=3000).start()
    wait_received(pri, "ACK ", 2)
    k.rpc("genesys_ha.switchover", "SIPS_T")
    r = long_call.wait()
    assert r.rc == 0 and r.successful == 1, r.screen
    byes = wait_received(bak, "BYE ", 1)
    assert len(byes) == 1 and byes[0]["text"].startswith(
        "BYE sip:sips@%s:5060" % pri.address), byes


def test_rr_dn_off_records_the_pair_only(tmp_path, kamailio_factory,
                                         sipp_factory):
    """rr_dn 0: the Record-Route names the pair without the DN, and the
    call's in-dialog requests are still routed by it; a bad value stops
    start-up with the parameter named."""
    pri_addr, bak_addr = harness.next_address(), harness.next_address()
    path = pair_pool(tmp_path, pri_addr, bak_addr)
    pri = hu.sipserver(sipp_factory, tmp_path, "primary",
                       address=pri_addr).start()
    cfg = hu.reference_cfg().replace('modparam("genesys_ha", "rr_dn", 1)',
                                     'modparam("genesys_ha", "rr_dn", 0)')
    assert 'modparam("genesys_ha", "rr_dn", 0)' in cfg
    k = hu.start_proxy(kamailio_factory, path, cfg_text=cfg)
    wait_pool(k, active_is("SIPS_A", "primary"), what="primary up")
    r = hu.phone(sipp_factory, k, "call1").run()
    assert r.rc == 0 and r.successful == 1, r.screen
    inv = wait_received(pri, "INVITE ", 1)[0]["text"]
    rrs = re.findall(r"^Record-Route: (.*)$", inv, re.M)
    assert len(rrs) == 1 and re.search(r";gha=SIPS_A(;|>)", rrs[0]), rrs
    assert "*" not in rrs[0], rrs
    assert len(wait_received(pri, "BYE ", 1)) == 1

    bad = hu.reference_cfg().replace('modparam("genesys_ha", "rr_dn", 1)',
                                     'modparam("genesys_ha", "rr_dn", 2)')
    assert "rr_dn 2 is invalid" in refuses_start(tmp_path / "k2", bad, path)


def test_reloads_under_traffic(tmp_path, kamailio_factory, sipp_factory,
                               peer_factory):
    """Snapshots swapped while calls flow: no call fails, nothing crashes
    (kamailio runs with its memory debugger: a double free or a use after
    free of a snapshot would show in the log the harness checks)."""
    pri_addr = harness.next_address()
    bak = peer_factory()
    x1, x2 = peer_factory(), peer_factory()
    path = tmp_path / "pool.xml"
    one = hu.pool_xml([("SIPS_A", "sip:%s:5060" % pri_addr, bak.uri, None)])
    two = hu.pool_xml([("SIPS_A", "sip:%s:5060" % pri_addr, bak.uri, None),
                       ("SIPS_X", x1.uri, x2.uri, None)])
    path.write_text(one)
    pri = hu.sipserver(sipp_factory, tmp_path, "primary", address=pri_addr).start()
    k = hu.start_proxy(kamailio_factory, str(path),
                       defines={"SERVING_SIPSERVER": '"SIPS_A"'})
    wait_pool(k, active_is("SIPS_A", "primary"), what="primary up")
    calls = hu.phone(sipp_factory, k, "calls", calls=60, rate=20,
                     hold_ms=200).start()
    for i in range(12):
        path.write_text(two if i % 2 == 0 else one)
        k.rpc("genesys_ha.reload")
        time.sleep(0.2)     # the pace of the reloads under test
    r = calls.wait()
    assert r.rc == 0 and r.successful == 60, r.screen
    p = pool(k)
    assert p["SIPS_A"]["active"] == "primary" and "SIPS_X" not in p
    assert p["_pool"]["generation"] == 13, p["_pool"]
    assert len(wait_received(pri, "BYE ", 60)) == 60
