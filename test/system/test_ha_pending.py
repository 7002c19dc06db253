"""genesys_ha: no caller waits for a dead member (issue 9, point 2).

A request relayed to a SIP Server that dies before its final reply ends as
soon as genesys_oos declares the member down: an INVITE is re-branched to
the pair's active member (also after a 180 from the dead one), other
requests get their final reply (failover for in-dialog requests, 408
otherwise).  A member that answers neither a relayed UDP request nor its
first retransmission is probed at once.  The dying SIP Server is a peer
process that the test SIGKILLs (ICMP) or SIGSTOPs (silence); everything runs
on 127.x loopback addresses."""

import re
import time

import pytest

import harness
import ha_util as hu
from ha_peer_proc import PeerProcess
from ha_util import wait_pool
from sip_peer import SipPeer
from test_ha import refuses_start


@pytest.fixture
def proc_factory():
    made = []

    def make(**kw):
        kw.setdefault("address", harness.next_address())
        p = PeerProcess(**kw).start()
        made.append(p)
        return p

    yield make
    for p in made:
        p.kill()


def pair_pool(tmp_path, pri, bak, name="SIPS_A"):
    return hu.write_pool(tmp_path / "pool.xml",
                         [(name, "sip:%s:5060" % pri, "sip:%s:5060" % bak,
                           None)])


class Caller(SipPeer):
    """An endpoint on its own address (a sip_peer.SipPeer that answers
    nothing): sends a request to the proxy and collects the replies."""

    def __init__(self, k):
        super().__init__("udp", port=0, rules={"*": None})
        self.k = k
        self.addr = self.address
        self.start()

    @property
    def replies(self):
        """(monotonic time of arrival, first line, text) of every reply"""
        return [(m.time, m.first, m.text)
                for m in self.select(lambda m: m.is_reply)]

    def send(self, method, ruri, route=None, cancel=False):
        """Send a request; cancel=True: a CANCEL of the last one."""
        if not cancel:
            self.callid = "pend-%f@%s" % (time.time(), self.addr)
            self.branch = int(time.time() * 1e6)
            self.ruri = ruri
        else:
            method, ruri = "CANCEL", self.ruri
        msg = hu.endpoint_request(method, ruri, self.addr, self.port,
                                  self.callid, route=route,
                                  branch=self.branch)
        SipPeer.send(self, msg, (self.k.address, self.k.port))
        if not cancel:
            self.sent_at = time.monotonic()

    def _first(self, pred, timeout):
        got = self.wait_for(lambda m: m.is_reply and pred(m.first),
                            timeout=timeout, fail=False)
        return (got[0].time, got[0].first, got[0].text) if got else None

    def wait(self, prefix, timeout):
        """The first reply whose first line starts with prefix (e.g.
        "SIP/2.0 18"): (time, first line, text), or None after timeout
        seconds."""
        return self._first(lambda first: first.startswith(prefix), timeout)

    def final(self, timeout):
        """The first final reply: (time, first line, text) or None."""
        return self._first(lambda first: not first.startswith("SIP/2.0 1"),
                           timeout)

    def close(self):
        self.stop()


def wait_down(k, role, timeout):
    """Time (monotonic) at which the pool shows the member down."""
    wait_pool(k, lambda p: p["SIPS_A"]["members"][role]["state"] == "down",
              timeout=timeout, what="%s down" % role)
    return time.monotonic()


def both_active(p):
    m = p["SIPS_A"]["members"]
    return (m["primary"]["state"] == "active"
            and m["backup"]["state"] == "active" and p["SIPS_A"]["state"] == "up")


def primary_active(p):
    return (p["SIPS_A"]["members"]["primary"]["state"] == "active"
            and p["SIPS_A"]["active"] == "primary")


def ringing_primary(tmp_path, kamailio_factory, peer_factory, proc_factory):
    """a proxy for the pair SIPS_A, both members active: a primary (its own
    process, to be killed or stopped) that rings 180 and a backup that
    answers -> (pri, bak, proxy)"""
    pri = proc_factory(invite_code=180)
    bak = peer_factory()
    k = hu.start_proxy(kamailio_factory, pair_pool(tmp_path, pri.address,
                                                   bak.address))
    wait_pool(k, both_active, what="both active")
    return pri, bak, k


def ringing_call(k):
    """an INVITE through k, ringing (180): its Caller"""
    c = Caller(k)
    c.send("INVITE", "sip:2000@%s" % k.address)
    assert c.wait("SIP/2.0 180", 3), c.replies
    return c


@pytest.mark.parametrize("fault", ["kill", "stop"])
def test_ringing_call_on_dead_primary_is_answered_by_backup(
        tmp_path, kamailio_factory, peer_factory, proc_factory, fault):
    """The primary rings (180) and dies (SIGKILL: ICMP; SIGSTOP: silence):
    as soon as the primary is found down, the same INVITE transaction forks
    to the backup, which answers; the caller gets the 200 within a second
    of the detection, not after fr_inv_timer (120 s)."""
    pri, bak, k = ringing_primary(tmp_path, kamailio_factory, peer_factory,
                                  proc_factory)
    c = ringing_call(k)
    t_fault = time.monotonic()
    if fault == "kill":
        pri.kill()
    else:
        pri.sigstop()
    t_down = wait_down(k, "primary", timeout=5)
    r = c.final(timeout=4)
    assert r is not None, "no final reply %.1fs after the primary died: %s" \
        % (time.monotonic() - t_fault, c.replies)
    t_final, first, _ = r
    assert first.startswith("SIP/2.0 200"), first
    # the pool shows "down" a poll (0.1 s) after the detection
    assert t_final - t_down < 1.0, (t_final - t_down)
    assert len(bak.requests("INVITE")) == 1
    log = k.log_text()
    assert re.search(r"pair 'SIPS_A': primary sip:%s:5060 is down: 1 "
                     r"unanswered request branch\(es\) to it end now"
                     % re.escape(pri.address), log), log[-3000:]
    assert re.search(r"request to primary sip:%s:5060 failed \(no answer\): "
                     r"retrying on backup" % re.escape(pri.address), log)
    st = k.statistics("genesys_ha:")
    assert st["pending_ended"] == 1, st
    c.close()


@pytest.mark.parametrize("grace", [0, 5000])
def test_ringing_call_gets_final_error_when_no_member_is_left(
        tmp_path, kamailio_factory, proc_factory, grace):
    """The backup does not answer (silent): the primary rings and is killed;
    the caller gets a final error at once instead of waiting 120 s.  Without
    a down grace: 503 at once (the ended branch, no member left).  With one (the reference
    default): the call is re-branched to the backup in the same transaction
    (it may be being promoted), and when that one does not answer either,
    503 with Retry-After after the grace timer (SIPS_GRACE_FR_TIMER)."""
    pri = proc_factory(invite_code=180)
    bak = proc_factory(options_code=None, answer_requests=False)
    k = hu.start_proxy(kamailio_factory, pair_pool(tmp_path, pri.address,
                                                   bak.address),
                       defines={"DOWN_GRACE": str(grace),
                                "SIPS_GRACE_FR_TIMER": "1000"})
    wait_pool(k, primary_active, what="primary active")
    c = ringing_call(k)
    pri.kill()
    t_down = wait_down(k, "primary", timeout=5)
    r = c.final(timeout=4)
    assert r is not None, c.replies
    # no member left to try and the pair has none known alive: the
    # reference config's HA_RETRY answers 503 with Retry-After
    assert r[1].startswith("SIP/2.0 503"), r[1]
    assert re.search(r"^Retry-After: \d+", r[2], re.M | re.I), r[2]
    assert r[0] - t_down < (1.0 if grace == 0 else 1.0 + 1.0), r[0] - t_down
    c.close()


def test_canceled_call_on_dead_primary_is_not_rebranched(
        tmp_path, kamailio_factory, peer_factory, proc_factory):
    """The caller CANCELs a call ringing on the primary, which never sends
    the 487 and then dies: the caller gets its final reply at once, and the
    call is not re-branched to the backup (a branch ended by genesys_ha is
    not a caller's CANCEL, but a caller's CANCEL stays one)."""
    pri, bak, k = ringing_primary(tmp_path, kamailio_factory, peer_factory,
                                  proc_factory)
    c = ringing_call(k)
    c.send(None, None, cancel=True)
    assert c.wait("SIP/2.0 200", 2), c.replies     # the CANCEL's 200
    pri.kill()
    t_down = wait_down(k, "primary", timeout=5)
    got = c.wait_for(lambda m: m.is_reply and "CSeq: 1 INVITE" in m.text
                     and not m.first.startswith("SIP/2.0 1"),
                     timeout=3, fail=False)
    assert got, [x[1] for x in c.replies]
    r = (got[0].time, got[0].first, got[0].text)
    assert r[1].startswith("SIP/2.0 487"), r[1]
    assert r[0] - t_down < 1.0, r[0] - t_down
    assert not bak.requests("INVITE")
    c.close()


def test_ringing_call_on_killed_tcp_primary_is_answered_by_backup(
        tmp_path, kamailio_factory, sipp_factory):
    """The same over TCP members (SIPp SIP Servers): the primary rings and
    is killed (its port refuses connections); the INVITE forks to the TCP
    backup at detection."""
    pri_addr, bak_addr = harness.next_address(), harness.next_address()
    path = hu.write_pool(tmp_path / "pool.xml", [
        ("SIPS_A", "sip:%s:5060;transport=tcp" % pri_addr,
         "sip:%s:5060;transport=tcp" % bak_addr, None)])
    text = (harness.SIPP_DIR / "ha_sipserver.xml").read_text()
    ring = text.replace('<label id="invite"/>\n  <send>\n    <![CDATA[\n\n'
                        '      SIP/2.0 200 OK',
                        '<label id="invite"/>\n  <send>\n    <![CDATA[\n\n'
                        '      SIP/2.0 180 Ringing', 1)
    assert ring != text
    (tmp_path / "ringing.xml").write_text(ring)
    pri = sipp_factory(str(tmp_path / "ringing.xml"), "primary",
                       address=pri_addr, calls=100000, timeout=120,
                       transport="t1").start()
    hu.sipserver(sipp_factory, tmp_path, "backup", address=bak_addr,
                 transport="t1").start()
    k = hu.start_proxy(kamailio_factory, path)
    wait_pool(k, both_active, what="both active")
    c = ringing_call(k)
    pri.kill()
    t_down = wait_down(k, "primary", timeout=5)
    r = c.final(timeout=3)
    assert r is not None, [x[1] for x in c.replies]
    assert r[1].startswith("SIP/2.0 200"), r[1]
    assert r[0] - t_down < 1.0, r[0] - t_down
    assert "sips@%s" % bak_addr in r[2], r[2]
    c.close()


def test_pending_non_invite_requests_end_when_member_dies(
        tmp_path, kamailio_factory, peer_factory, proc_factory):
    """Requests pending on a primary that takes them but never answers, when
    it is killed: an in-dialog BYE (failure route armed) fails over to the
    backup and gets its 200, an initial MESSAGE (no failure route) gets its
    408, both within a second of the detection (SIPS_FR_TIMER is 20 s,
    fr_timer 30 s)."""
    pri = proc_factory(answer_requests=False)   # answers OPTIONS only
    bak = peer_factory()
    k = hu.start_proxy(kamailio_factory, pair_pool(tmp_path, pri.address,
                                                   bak.address),
                       defines={"SIPS_FR_TIMER": "20000",
                                "SIPS_NI_FR_TIMER": "20000"})
    wait_pool(k, both_active, what="both active")
    bye = Caller(k)
    bye.send("BYE", "sip:sips@%s:5060" % pri.address,
             route="<sip:%s;lr;gha=SIPS_A*1001>" % k.address)
    msg = Caller(k)
    msg.send("MESSAGE", "sip:2000@%s" % k.address)
    # both are pending on the primary (retransmitted: T1 probes, answered)
    time.sleep(0.8)     # what is tested: no final reply while pending
    assert bye.final(0) is None and msg.final(0) is None
    pri.kill()
    t_down = wait_down(k, "primary", timeout=5)
    rb, rm = bye.final(timeout=3), msg.final(timeout=3)
    assert rb is not None and rm is not None, (bye.replies, msg.replies)
    assert rb[1].startswith("SIP/2.0 200"), rb[1]
    assert rm[1].startswith("SIP/2.0 408"), rm[1]
    assert rb[0] - t_down < 1.0 and rm[0] - t_down < 1.0, (rb[0] - t_down,
                                                           rm[0] - t_down)
    assert len(bak.requests("BYE")) == 1
    assert not bak.requests("MESSAGE")
    k.wait_log(r"primary sip:%s:5060 is down: 2 unanswered request "
               r"branch\(es\)" % re.escape(pri.address), timeout=1)
    bye.close()
    msg.close()


def test_silent_member_probed_after_first_retransmission(
        tmp_path, kamailio_factory, peer_factory, proc_factory):
    """oos_check is 30 s; the primary stops (SIGSTOP) between two probes.
    The first INVITE to it is not answered, nor its retransmission: the
    primary is probed at once (T1), found down after oos_timeout (1 s), and
    the INVITE is re-branched to the backup: the caller's 200 comes about
    2 s after the INVITE, not after the next periodic probe or
    SIPS_FR_TIMER (20 s)."""
    oos = {"oos_check": 30, "oos_force": 1, "oos_timeout": 1000,
           "fail_threshold": 1, "ok_threshold": 1}
    pri = proc_factory()
    bak = peer_factory()
    k = hu.start_proxy(kamailio_factory, pair_pool(tmp_path, pri.address,
                                                   bak.address),
                       oos=oos, defines={"SIPS_FR_TIMER": "20000"})
    wait_pool(k, both_active, what="both active")
    pri.sigstop()
    c = Caller(k)
    c.send("INVITE", "sip:2000@%s" % k.address)
    try:
        t_down = wait_down(k, "primary", timeout=4)
    except AssertionError as e:
        raise AssertionError("%s\ncaller got: %s" % (e, [r[1] for r in c.replies]))
    assert t_down - c.sent_at < 2.5, t_down - c.sent_at
    r = c.final(timeout=3)
    assert r is not None, c.replies
    assert r[1].startswith("SIP/2.0 200"), r[1]
    assert r[0] - c.sent_at < 3.0, r[0] - c.sent_at
    assert len(bak.requests("INVITE")) == 1
    k.wait_log(r"pair 'SIPS_A': a request relayed to primary sip:%s:5060 is "
               r"unanswered after its first retransmission \(T1\): probing "
               r"it now" % re.escape(pri.address), timeout=1)
    c.close()


def test_many_ringing_calls_all_rebranched(
        tmp_path, kamailio_factory, peer_factory, proc_factory):
    """60 calls ring on the primary when it is killed: every one of them is
    answered by the backup within a second of the detection."""
    n = 60
    pri, bak, k = ringing_primary(tmp_path, kamailio_factory, peer_factory,
                                  proc_factory)
    callers = [Caller(k) for _ in range(n)]
    for c in callers:
        c.send("INVITE", "sip:2000@%s" % k.address)
    for c in callers:
        assert c.wait("SIP/2.0 180", 3), c.replies
    pri.kill()
    t_down = wait_down(k, "primary", timeout=5)
    late = []
    for c in callers:
        r = c.final(timeout=max(0.1, t_down + 1.0 - time.monotonic()))
        if r is None or not r[1].startswith("SIP/2.0 200") \
                or r[0] - t_down >= 1.0:
            late.append(r and (r[1], r[0] - t_down))
        c.close()
    assert not late, late
    assert len(bak.requests("INVITE")) == n
    k.wait_log(r"primary sip:%s:5060 is down: %d unanswered request "
               r"branch\(es\)" % (re.escape(pri.address), n), timeout=1)


def _t1_process_cpu(k):
    """CPU seconds (user+sys) used so far by the T1 check process."""
    procs = k.processes()
    pids = [p for p, d in procs if "GENESYS_HA T1 CHECK" in d]
    assert len(pids) == 1, procs
    fields = open("/proc/%d/stat" % pids[0]).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(
        harness.os.sysconf("SC_CLK_TCK"))


def test_t1_check_process_costs_next_to_nothing(
        tmp_path, kamailio_factory, peer_factory, sipp_factory):
    """The T1 check process wakes every 100 ms and looks only at requests
    relayed since: idle, and while 200 calls go through, it uses a few
    milliseconds of CPU (it once slept 100 us instead of 100 ms: 10% of a
    core). t1_probe 0: no such process."""
    pri, bak = peer_factory(), peer_factory()
    k = hu.start_proxy(kamailio_factory, pair_pool(tmp_path, pri.address,
                                                   bak.address))
    wait_pool(k, both_active, what="both active")
    before = _t1_process_cpu(k)
    time.sleep(1.0)     # what is tested: the idle second's CPU
    r = hu.phone(sipp_factory, k, "calls", calls=200, hold_ms=0,
                 rate=200).run()
    assert r.rc == 0 and r.successful == 200, r.screen
    used = _t1_process_cpu(k) - before
    assert used < 0.1, "T1 check process used %.2f s CPU" % used
    k2 = hu.start_proxy(
        kamailio_factory, tmp_path / "pool.xml", name="proxy2",
        cfg_text=hu.reference_cfg().replace(
            'loadmodule "genesys_ha"\n',
            'loadmodule "genesys_ha"\nmodparam("genesys_ha", "t1_probe", 0)\n',
            1))
    procs = k2.processes()
    assert not any("GENESYS_HA T1 CHECK" in d for _, d in procs), procs


def test_stopped_primary_resumes_after_its_calls_moved(
        tmp_path, kamailio_factory, peer_factory, proc_factory):
    """30 INVITEs wait on a stopped primary; it is found down, every call is
    re-branched and answered by the backup; then the primary resumes and
    answers the queued INVITEs (and their retransmissions) with 200 on
    branches that tm already ended: late answers on ended branches, handled
    by tm (no crash, no BUG in the log), every caller keeps its answer."""
    n = 30
    pri = proc_factory()
    bak = peer_factory()
    k = hu.start_proxy(kamailio_factory, pair_pool(tmp_path, pri.address,
                                                   bak.address),
                       defines={"SIPS_FR_TIMER": "20000"})
    wait_pool(k, both_active, what="both active")
    pri.sigstop()
    callers = [Caller(k) for _ in range(n)]
    for c in callers:
        c.send("INVITE", "sip:2000@%s" % k.address)
    t_down = wait_down(k, "primary", timeout=4)
    late = []
    for c in callers:
        r = c.final(timeout=max(0.1, t_down + 1.0 - time.monotonic()))
        if r is None or not r[1].startswith("SIP/2.0 200"):
            late.append(r and r[1])
    assert not late, late
    assert len(bak.requests("INVITE")) == n
    pri.sigcont()
    wait_pool(k, lambda p: p["SIPS_A"]["members"]["primary"]["state"]
              == "active", timeout=4, what="primary back")
    time.sleep(0.5)   # the primary's late 200s are relayed or dropped now
    for c in callers:
        assert c.final(0)[1].startswith("SIP/2.0 200")
        c.close()
    # the proxy still routes (to the backup, active since the switchover)
    c = Caller(k)
    c.send("INVITE", "sip:2000@%s" % k.address)
    r = c.final(timeout=3)
    assert r and r[1].startswith("SIP/2.0 200"), c.replies
    c.close()


@pytest.mark.parametrize("param,value,msg", [
    ("end_pending_on_down", 2, "end_pending_on_down 2 is invalid"),
    ("t1_probe", -1, "t1_probe -1 is invalid"),
    ("t1_slots", 8, "t1_slots 8 is invalid"),
])
def test_bad_parameters_refuse_start(tmp_path, param, value, msg):
    path = pair_pool(tmp_path, "127.0.0.1", "127.0.0.2")
    cfg = hu.reference_cfg().replace(
        'loadmodule "genesys_ha"\n',
        'loadmodule "genesys_ha"\nmodparam("genesys_ha", "%s", %d)\n'
        % (param, value), 1)
    assert msg in refuses_start(tmp_path / "k", cfg, path)
