#!/usr/bin/python3
"""The pair-down window of issue 9: 100 calls/s of 5 s, the primary SIP
Server is killed (SIGKILL: ICMP) or stopped (SIGSTOP: silence) and the backup
is started ("promoted") 1 s later; the reference kamailio.cfg with a pool
file.  Prints failed calls, calls answered later than 2 s and the slowest
answer, per variant.

  bench/grace_window.py [--calls N] [--grace MS] [--probes default|1s]
                        [--fr MS] [--variant kill|stop|both] [--runs N]

Not a pass/fail test: test/system/test_ha_grace.py checks the behaviour.
"""

import argparse
import csv
import glob
import os
import signal
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "test" / "system"))

import harness  # noqa: E402
import ha_util as hu  # noqa: E402

PROBES = {
    # etc/kamailio.cfg as shipped
    "default": {"oos_check": 5, "oos_force": 5, "oos_timeout": 4000,
                "fail_threshold": 1, "ok_threshold": 1},
    "1s": {"oos_check": 1, "oos_force": 1, "oos_timeout": 1000,
           "fail_threshold": 1, "ok_threshold": 1},
}


def rtts(workdir):
    """response times (ms) of every call, from SIPp's -trace_rtt file"""
    out = []
    for f in glob.glob(str(Path(workdir) / "*_rtt.csv")):
        with open(f) as fh:
            for row in csv.reader(fh, delimiter=";"):
                if len(row) >= 2 and row[0] and row[0][0].isdigit():
                    try:
                        out.append(float(row[1]))
                    except ValueError:
                        pass
    return out


def run(variant, args):
    work = Path(tempfile.mkdtemp(prefix="grace-%s-" % variant))
    pri_addr, bak_addr = harness.next_address(), harness.next_address()
    path = hu.write_pool(work / "pool.xml", [
        ("SIPS_A", "sip:%s:5060" % pri_addr, "sip:%s:5060" % bak_addr,
         None)])
    defines = {"POOL_FILE": '"%s"' % path, "DOWN_GRACE": str(args.grace),
               "CHILDREN": "4"}
    if args.fr:
        defines["SIPS_FR_TIMER"] = str(args.fr)
    k = harness.Kamailio(work / "k", cfg_text=hu.reference_cfg(
        PROBES[args.probes]), defines=defines)
    made = []
    try:
        # the primary runs before the proxy starts (as in production: no
        # unanswered probe to it that a late answer could spoil)
        pri = harness.Sipp(work, harness.SIPP_DIR / "ha_sipserver.xml",
                           "primary", address=pri_addr, calls=10 ** 6,
                           timeout=600, trace=False)
        made.append(pri)
        pri.start()
        k.start()
        hu.wait_pool(k, lambda p: p["SIPS_A"]["state"] == "up"
                     and p["SIPS_A"]["members"]["backup"]["state"] == "down",
                     timeout=15, what="primary up, backup down")
        phone = harness.Sipp(work, harness.SIPP_DIR / "ha_phone_call.xml",
                             "phone", remote="%s:%d" % (k.address, k.port),
                             calls=args.calls, service="2000", timeout=600,
                             trace=False,
                             extra_args=["-d", "5000", "-r", "100",
                                         "-trace_rtt", "-rtt_freq", "1"])
        made.append(phone)
        phone.start()
        time.sleep(6.0)  # calls set up on the primary, some ending
        if variant == "kill":
            os.killpg(pri.proc.pid, signal.SIGKILL)
        else:
            os.killpg(pri.proc.pid, signal.SIGSTOP)
        t_fail = time.monotonic()
        time.sleep(1.0)
        bak = harness.Sipp(work, harness.SIPP_DIR / "ha_sipserver.xml",
                           "backup", address=bak_addr, calls=10 ** 6,
                           timeout=600, trace=False)
        made.append(bak)
        bak.start()
        t_bak = time.monotonic() - t_fail
        r = phone.wait(timeout=args.calls / 100 + 120)
        times = rtts(work)
        p = hu.pool(k)["SIPS_A"]
        late = sum(1 for t in times if t > 2000)
        return {"variant": variant, "calls": args.calls,
                "successful": r.successful, "failed": r.failed,
                "answered>2s": late,
                "slowest_ms": int(max(times)) if times else None,
                "answers_timed": len(times), "backup_started_s":
                round(t_bak, 2), "grace_routed": p.get("grace_routed"),
                "failovers": p.get("failovers"), "rejected": p.get("rejected"),
                "trigger": p.get("last_switchover", {}).get("trigger")}
    finally:
        for s in made:
            if s.proc and s.proc.poll() is None:
                try:
                    os.killpg(s.proc.pid, signal.SIGCONT)
                except OSError:
                    pass
            s.kill()
        k.stop(check=False)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--calls", type=int, default=1500)
    ap.add_argument("--grace", type=int, default=5000)
    ap.add_argument("--probes", choices=sorted(PROBES), default="default")
    ap.add_argument("--fr", type=int, default=0,
                    help="SIPS_FR_TIMER (default: the cfg's)")
    ap.add_argument("--variant", choices=("kill", "stop", "both"),
                    default="both")
    ap.add_argument("--runs", type=int, default=1)
    args = ap.parse_args()
    variants = ("kill", "stop") if args.variant == "both" else (args.variant,)
    print("probes %s, down_grace %d ms, SIPS_FR_TIMER %s"
          % (args.probes, args.grace, args.fr or "cfg default"))
    for _ in range(args.runs):
        for v in variants:
            print(run(v, args), flush=True)


if __name__ == "__main__":
    main()
