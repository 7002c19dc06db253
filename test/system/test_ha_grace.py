"""genesys_ha system tests, issue 9 points 1 and 3: no refusal in the
pair-down window (down_grace) and failover of TCP/TLS members whose
connection is refused or that stop answering.  The reference kamailio.cfg
with a pool file; SIP Servers are ha_util peers (UDP), SIPp (TCP) or a
Python TLS server; everything on 127.x loopback addresses.

A Genesys backup in hot standby does not answer SIP until it is promoted;
the primary is "killed" (its socket closed: ICMP port unreachable) or
"stopped" (silent)."""

import os
import re
import signal
import threading
import time

import pytest

import harness
from sticky_env import tls_cfg
import ha_util as hu
from sip_peer import SipPeer, wait_until
from test_ha import wait_received
from ha_util import pool, wait_pool


def pair_pool(tmp_path, pri, bak, name="SIPS_A"):
    return hu.write_pool(tmp_path / "pool.xml",
                         [(name, pri.uri, bak.uri, None)])


# the backup is probed while down only every 5 s: what makes it active
# quickly is the proxy's own traffic to it (grace) and its replies
SLOW_DOWN_PROBES = dict(hu.FAST_OOS, oos_force=5)


def grace_proxy(kamailio_factory, path, grace_ms, grace_fr_ms, **kw):
    return hu.start_proxy(kamailio_factory, path, oos=SLOW_DOWN_PROBES,
                          defines={"DOWN_GRACE": str(grace_ms),
                                   "SIPS_GRACE_FR_TIMER": str(grace_fr_ms)},
                          **kw)


def short_probe_transactions():
    """the reference cfg with tm's fr_timer (the probes' transactions) cut
    to 450 ms: a member that starts answering is seen by a new probe only,
    never by a retransmission of an old one"""
    cfg = hu.reference_cfg(SLOW_DOWN_PROBES)
    out = cfg.replace('modparam("tm", "fr_timer", 30000)',
                      'modparam("tm", "fr_timer", 450)')
    assert out != cfg
    return out


class Request(threading.Thread):
    """hu.udp_request() in a thread; .status, .text, .elapsed"""

    def __init__(self, k, method, ruri, **kw):
        super().__init__(daemon=True)
        self.args = (k, method, ruri)
        self.kw = kw
        self.status = self.text = None
        self.elapsed = None

    def run(self):
        t0 = time.monotonic()
        self.status, self.text = hu.udp_request(*self.args, **self.kw)
        self.elapsed = time.monotonic() - t0


def bye_for(k, pri):
    """an in-dialog BYE of a call set up on the primary (the Request-URI is
    the primary's Contact, the Route names the pair)"""
    return Request(k, "BYE", "sip:sips@%s:5060" % pri.address,
                   route="<sip:%s;lr;gha=SIPS_A*1001>" % k.address, timeout=6)


def branches(peer, method):
    return {re.search(r"branch=([^;\s]+)", t).group(1)
            for t in peer.requests(method)}


def first_time(peer, method):
    with peer._lock:
        return min(t for t, text, _ in peer.received
                   if text.startswith(method + " "))


def connection_gone(k, address):
    """wait until the proxy has seen the end of its connection to address
    (core.tcp_list no longer lists it)"""
    rx = re.compile(r"src_ip:\s*%s\s" % re.escape(address))
    wait_until(lambda: not rx.search(k.rpc("core.tcp_list") + "\n"), 3,
               lambda: "connection to %s closed:\n%s"
               % (address, k.rpc("core.tcp_list")))


def up_backup_silent(k):
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "up"
              and p["SIPS_A"]["members"]["backup"]["state"] == "down",
              what="primary up, backup down (hot standby)")


@pytest.mark.parametrize("standby", ["silent", "503"])
@pytest.mark.parametrize("failure", ["kill", "stop"])
def test_primary_fails_backup_promoted_invite_and_bye_succeed(
        tmp_path, kamailio_factory, peer_factory, failure, standby):
    """The primary dies (killed: ICMP; stopped: silence) while the backup
    does not answer yet (silent, or 503 to OPTIONS): the pair has no member
    known alive, but an INVITE and an in-dialog BYE sent in that window go
    to the backup, which is promoted 0.3 s later and answers them (tm's
    retransmission reaches it): both succeed well within 2 s instead of an
    immediate 503; the backup's replies make the proxy probe it at once, so
    the pair switches to it without waiting for its periodic probe."""
    pri = peer_factory()
    bak = peer_factory(options_code=None if standby == "silent" else 503,
                       answer_requests=False)
    k = grace_proxy(kamailio_factory, pair_pool(tmp_path, pri, bak),
                    5000, 2000, cfg_text=short_probe_transactions())
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "up"
              and p["SIPS_A"]["members"]["backup"]["state"]
              == ("down" if standby == "silent" else "inactive"),
              what="primary up, backup in standby")
    if failure == "kill":
        pri.stop()                                 # ICMP
    else:
        pri.options_code = None                    # silence
        pri.answer_requests = False
    wait_pool(k, lambda p: p["SIPS_A"]["members"]["primary"]["state"]
              == "down", timeout=3, what="primary down")
    p = pool(k)["SIPS_A"]
    assert p["state"] == ("out-of-service" if standby == "silent"
                          else "inactive"), p
    assert p["grace_left_ms"] > 3000, p
    k.wait_log(r"SIP Server pair 'SIPS_A' has no member known alive: down "
               r"grace, requests go to the backup sip:%s:5060 for up to 5000 "
               r"ms" % re.escape(bak.address))
    inv = Request(k, "INVITE", "sip:2000@%s" % k.address, timeout=6)
    bye = bye_for(k, pri)
    inv.start()
    bye.start()
    # both reach the silent backup before it is promoted
    bak.wait_requests("INVITE", timeout=2)
    bak.wait_requests("BYE", timeout=2)
    t_promoted = time.monotonic()
    bak.options_code = 200                         # promoted
    bak.answer_requests = True
    inv.join(8)
    bye.join(8)
    assert inv.status and inv.status.startswith("SIP/2.0 200"), inv.status
    assert bye.status and bye.status.startswith("SIP/2.0 200"), bye.status
    assert inv.elapsed < 2.0 and bye.elapsed < 2.0, (inv.elapsed, bye.elapsed)
    assert len(branches(bak, "INVITE")) == 1
    assert bak.requests("BYE")[0].startswith(
        "BYE sip:sips@%s:5060 " % pri.address)
    if failure == "stop":
        assert not pri.requests("INVITE") and not pri.requests("BYE")
    # its next periodic probe is 5 s away: the replies made it probed now
    p = wait_pool(k, lambda p: p["SIPS_A"]["active"] == "backup"
                  and p["SIPS_A"]["state"] == "up", timeout=3,
                  what="backup active")
    assert time.monotonic() - t_promoted < 1.2
    assert p["SIPS_A"]["grace_routed"] == 2, p
    assert p["SIPS_A"]["grace_left_ms"] == 0, p
    # new calls: to the backup, as usual
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status.startswith("SIP/2.0 200"), status
    assert len(branches(bak, "INVITE")) == 2
    st = k.statistics("genesys_ha:")
    assert st["grace"] == 2, st


def test_both_members_dead_503_after_both_tried_then_at_once_after_grace(
        tmp_path, kamailio_factory, peer_factory):
    """The primary stops (silent) and the backup never comes: an INVITE in
    the down grace is tried on the backup, then on the primary (each with
    the grace timer), then answered 503 with Retry-After, within 2 grace
    timers; once the grace expired, requests get 503 at once and nothing is
    sent to the members."""
    pri = peer_factory()
    bak = peer_factory(options_code=None, answer_requests=False)
    k = grace_proxy(kamailio_factory, pair_pool(tmp_path, pri, bak),
                    3500, 1000)
    up_backup_silent(k)
    pri.options_code = None                         # stopped: silence
    pri.answer_requests = False
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "out-of-service",
              timeout=3, what="pair out of service")
    inv = Request(k, "INVITE", "sip:2000@%s" % k.address, timeout=6)
    inv.run()
    assert inv.status and inv.status.startswith("SIP/2.0 503"), inv.status
    assert re.search(r"^Retry-After: 5\r?$", inv.text, re.M), inv.text
    assert 1.8 < inv.elapsed < 3.0, inv.elapsed
    assert len(branches(bak, "INVITE")) == 1
    assert len(branches(pri, "INVITE")) == 1
    assert first_time(bak, "INVITE") < first_time(pri, "INVITE")
    k.wait_log(r"pair 'SIPS_A': request to backup sip:%s:5060 failed \(no "
               r"answer\): retrying on primary sip:%s:5060 \(not known alive: "
               r"down grace\)" % (re.escape(bak.address),
                                  re.escape(pri.address)))
    # the grace expires: 503 at once, nothing relayed
    wait_pool(k, lambda p: p["SIPS_A"]["grace_left_ms"] == 0, timeout=3,
              what="grace expired")
    n_pri, n_bak = len(pri.received), len(bak.received)
    for req in (Request(k, "INVITE", "sip:2000@%s" % k.address),
                bye_for(k, pri)):
        req.run()
        assert req.status and req.status.startswith("SIP/2.0 503"), req.status
        assert "Retry-After: 5" in req.text
        assert req.elapsed < 0.5, req.elapsed
    time.sleep(0.2)     # what is tested: nothing relayed in that time
    assert not [t for _, t, _ in pri.received[n_pri:]
                if not t.startswith("OPTIONS")]
    assert not [t for _, t, _ in bak.received[n_bak:]
                if not t.startswith("OPTIONS")]


def test_down_grace_off_refuses_at_once(tmp_path, kamailio_factory,
                                        peer_factory):
    """down_grace 0: the behaviour before issue 9, 503 as soon as the pair
    is out of service; a bad value stops start-up."""
    pri = peer_factory()
    bak = peer_factory(options_code=None, answer_requests=False)
    path = pair_pool(tmp_path, pri, bak)
    k = grace_proxy(kamailio_factory, path, 0, 2000)
    up_backup_silent(k)
    pri.stop()
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "out-of-service",
              timeout=3, what="pair out of service")
    req = Request(k, "INVITE", "sip:2000@%s" % k.address)
    req.run()
    assert req.status.startswith("SIP/2.0 503") and req.elapsed < 0.5
    assert not bak.requests("INVITE")
    assert pool(k)["SIPS_A"]["grace_routed"] == 0

    cfg = hu.reference_cfg()
    k2 = harness.Kamailio(tmp_path / "k2", cfg_text=cfg,
                          defines={"POOL_FILE": '"%s"' % path,
                                   "DOWN_GRACE": "-1"})
    with pytest.raises(harness.HarnessError):
        k2.start(timeout=10)
    k2.stop(check=False)
    assert "down_grace -1 is invalid" in k2.log_text()


@pytest.mark.parametrize("failure", ["kill", "stop"])
def test_tcp_member_failure_fails_over_in_transaction(
        tmp_path, kamailio_factory, sipp_factory, failure):
    """SIP Servers on TCP, and probing has not noticed the failure yet.
    kill: the primary's port is closed (connection refused): t_relay()
    fails at once, and the INVITE is not answered 477 but sent to the backup
    in the same transaction.  stop: the primary's kernel still accepts the
    connection but nothing answers: the backup after SIPS_FR_TIMER.  Both:
    the pair switches (relay-failure) and genesys_oos probes the primary at
    once."""
    path, pri, bak = hu.tcp_sipp_pair(sipp_factory, tmp_path)
    pri_addr = pri.address
    # probes every 30 s: the failure is found by the call, not by a probe
    k = hu.start_proxy(kamailio_factory, path,
                       oos=dict(hu.FAST_OOS, oos_check=30, oos_force=30))
    wait_pool(k, lambda p: p["SIPS_T"]["members"]["backup"]["state"] == "active"
              and p["SIPS_T"]["state"] == "up", what="both active")
    r = hu.phone(sipp_factory, k, "call1").run()
    assert r.rc == 0 and r.successful == 1, r.screen
    assert len(wait_received(pri, "INVITE ", 1)) == 1
    if failure == "kill":
        pri.kill()
        connection_gone(k, pri_addr)
    else:
        os.killpg(pri.proc.pid, signal.SIGSTOP)
    assert pool(k)["SIPS_T"]["members"]["primary"]["state"] == "active"
    t0 = time.monotonic()
    r = hu.phone(sipp_factory, k, "call2").run()
    elapsed = time.monotonic() - t0
    assert r.rc == 0 and r.successful == 1, r.screen
    assert len(wait_received(bak, "INVITE ", 1)) == 1
    assert len(wait_received(bak, "BYE ", 1)) == 1
    why = "send failed" if failure == "kill" else "no answer"
    k.wait_log(r"pair 'SIPS_T': request to primary sip:%s:5060;transport=tcp "
               r"failed \(%s\): retrying on backup"
               % (re.escape(pri_addr), why))
    assert "477" not in "".join(m["text"].split("\r\n", 1)[0]
                                for m in r.messages)
    # refused: at once; silent: after SIPS_FR_TIMER (1.5 s in the tests)
    assert elapsed < (1.3 if failure == "kill" else 2.8), elapsed
    p = wait_pool(k, lambda p: p["SIPS_T"]["members"]["primary"]["state"]
                  == "down", timeout=3, what="primary probed down at once")
    assert p["SIPS_T"]["active"] == "backup"
    assert p["SIPS_T"]["last_switchover"]["trigger"] == "relay-failure"


def test_site_balancing_falls_back_to_a_pair_in_grace(
        tmp_path, kamailio_factory, peer_factory):
    """ha_select_site(): when no pair of the site can take new dialogs, a
    pair in its down grace does (never a pair that was down all along)."""
    e1p = peer_factory()
    e1b = peer_factory(options_code=None)       # promoted, not probed yet
    e2p = peer_factory(options_code=None, answer_requests=False)
    e2b = peer_factory(options_code=None, answer_requests=False)
    path = hu.write_pool(tmp_path / "pool.xml", [
        ("SIPS-E1", e1p.uri, e1b.uri, "east"),
        ("SIPS-E2", e2p.uri, e2b.uri, "east")])
    k = hu.start_proxy(kamailio_factory, path, oos=SLOW_DOWN_PROBES,
                       defines={"GEO_LOCATION": '"east"',
                                "DOWN_GRACE": "5000",
                                "SIPS_GRACE_FR_TIMER": "2000"})
    wait_pool(k, lambda p: p["SIPS-E1"]["state"] == "up"
              and p["SIPS-E2"]["state"] == "out-of-service",
              what="E1 up, E2 out of service")
    e1p.stop()
    wait_pool(k, lambda p: p["SIPS-E1"]["state"] == "out-of-service",
              timeout=3, what="E1 out of service")
    for i in range(2):
        status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
        assert status and status.startswith("SIP/2.0 200"), status
    assert len(e1b.requests("INVITE")) == 2
    assert not e2p.requests("INVITE") and not e2b.requests("INVITE")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    from tls_ua import Certs
    return Certs(tmp_path_factory.mktemp("grace-tls-certs"))


def test_tls_member_refusing_connections_fails_over_in_transaction(
        tmp_path, kamailio_factory, certs):
    """SIP Servers on TLS: the primary is gone (port closed) and probing
    has not noticed: the INVITE reaches the backup in the same transaction,
    no 477 to the caller, and the primary is probed down at once."""
    # SIP Servers on TLS: every request answered 200 (INVITE with a To-tag
    # and a Contact)
    pri, bak = (SipPeer("tls", port=5061, certs=certs) for _ in range(2))
    pri.start()
    bak.start()
    try:
        path = hu.write_pool(tmp_path / "pool.xml",
                             [("SIPS_S", pri.uri, bak.uri, None)])
        tcfg = tmp_path / "tls.cfg"
        tcfg.write_text(tls_cfg(certs))
        address = harness.next_address()
        k = hu.start_proxy(kamailio_factory, path, address=address,
                           oos=dict(hu.FAST_OOS, oos_check=30, oos_force=30),
                           defines={"WITH_TLS": "1",
                                    "TLS_CFG": '"%s"' % tcfg,
                                    "LISTEN_TLS": "tls:%s:5061" % address})
        wait_pool(k, lambda p: p["SIPS_S"]["state"] == "up"
                  and p["SIPS_S"]["members"]["backup"]["state"] == "active",
                  what="both active")
        status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % address)
        assert status and status.startswith("SIP/2.0 200"), status
        assert len(pri.requests_of("INVITE")) == 1
        pri.stop()
        connection_gone(k, pri.address)
        assert pool(k)["SIPS_S"]["members"]["primary"]["state"] == "active"
        t0 = time.monotonic()
        status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % address,
                                   timeout=5)
        assert status and status.startswith("SIP/2.0 200"), status
        assert time.monotonic() - t0 < 2.5
        assert len(bak.requests_of("INVITE")) == 1
        k.wait_log(r"pair 'SIPS_S': request to primary sip:%s:5061;"
                   r"transport=tls failed \((send failed|no answer)\): "
                   r"retrying on backup" % re.escape(pri.address))
        p = wait_pool(k, lambda p: p["SIPS_S"]["members"]["primary"]["state"]
                      == "down", timeout=3, what="primary probed down")
        assert p["SIPS_S"]["active"] == "backup"
    finally:
        pri.stop()
        bak.stop()
