"""genesys_ha system tests: the reference kamailio.cfg with a pool file,
SIP Servers simulated by SIPp (or a UDP peer where one process must answer
and send), phones by SIPp; everything on 127.x loopback addresses."""

import re
import time

import pytest

import harness
import ha_util as hu
from ha_util import pool, wait_pool


def pair_pool(tmp_path, pri, bak, name="SIPS_A", **kw):
    return hu.write_pool(tmp_path / "pool.xml",
                         [(name, "sip:%s:5060" % pri, "sip:%s:5060" % bak, None)],
                         **kw)


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
