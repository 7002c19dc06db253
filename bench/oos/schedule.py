#!/usr/bin/python3
"""genesys_oos probe schedule at scale: are thousands of targets probed on
time, without false state changes, at a flat CPU cost per probe?

For each target count (--targets 100,1000,5000) one kamailio probes that
many UDP targets every --period seconds (oos_check = oos_force = period,
transport check on, the default 8 probe slots).  The targets are distinct
loopback addresses 127.251.x.y on one port, all answered by one responder
socket bound to 0.0.0.0 that replies from the address each probe went to
(test/system/oos_responder.py), so every probe is a real OPTIONS
transaction with a real answer.  After all targets are active and a
warm-up, for --duration seconds the responder records every new probe's
arrival per target; an interval is 'off' when it differs from the period by
more than 10 %.  State changes logged during the window are false (every
target always answers).  CPU is utime+stime of the probe process and of all
kamailio processes (the SIP workers read the replies).

    /usr/bin/python3 bench/oos/schedule.py [--targets 100,1000,5000]
        [--duration 60] [--period 1] [--warmup 5] [--out FILE]
"""

import argparse
import os
import re
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOP = HERE.parents[1]
sys.path.insert(0, str(TOP / "test" / "system"))
sys.path.insert(0, str(TOP / "bench"))

import harness  # noqa: E402
from cfgbuild import kamailio_cfg  # noqa: E402
from oos_responder import ManyResponder, member_address  # noqa: E402
from benchlib import cpu_seconds  # noqa: E402

BASE = kamailio_cfg(debug=1, modules=("kex", "tm", "sl", "genesys_oos"),
                    body="""modparam("genesys_oos", "oos_check", %(period)d)
modparam("genesys_oos", "oos_force", %(period)d)
modparam("genesys_oos", "oos_timeout", %(timeout)d)
%(targets)s
request_route { sl_send_reply("404", "Not here"); }
""")

STATE_RX = re.compile(r"target (sip:\S+) state (\w+) -> (\w+)")


def proc_cpu(pid):
    tick = os.sysconf("SC_CLK_TCK")
    fields = Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick


def probe_pid(k):
    for pid, dsc in k.processes():
        if "GENESYS_OOS PROBE TIMER" in dsc:
            return pid
    raise RuntimeError("no probe process in core.psx")


def pct(values, p):
    if not values:
        return float("nan")
    v = sorted(values)
    return v[min(len(v) - 1, int(p / 100.0 * len(v)))]


def run(n, args, work):
    resp = ManyResponder(period=args.period, tolerance=0.10, keep_errors=True)
    resp.start()
    uris = [resp.uri(member_address(i, 251)) for i in range(n)]
    cfg = BASE % {
        "period": args.period,
        "timeout": min(1000 * args.period, args.timeout),
        "targets": "\n".join('modparam("genesys_oos", "target", "%s")' % u
                             for u in uris)}
    # an address of its own (127.250/16 is not used by the tests' counter)
    k = harness.Kamailio(work / ("n%d" % n), cfg_text=cfg, mem_debug=False,
                         address="127.250.%d.%d" % (os.getpid() % 250,
                                                    n % 250 + 1),
                         extra_args=["-x", "tlsf", "-X", "tlsf",
                                     "-m", str(args.shm)],
                         defines={"CHILDREN": str(args.children)})
    try:
        k.start(timeout=60)
        # all targets answered once (every one logs unknown -> active)
        deadline = time.monotonic() + 60
        while len(set(m[0] for m in STATE_RX.findall(k.log_text())
                      if m[2] == "active")) < n:
            if time.monotonic() > deadline:
                raise RuntimeError("not all %d targets active" % n)
            time.sleep(0.5)
        time.sleep(args.warmup)
        pp = probe_pid(k)
        log0 = len(k.log_text())
        resp.reset_stats()
        pcpu0, kcpu0, t0 = proc_cpu(pp), cpu_seconds(k.proc.pid), time.monotonic()
        time.sleep(args.duration)
        pcpu1, kcpu1, t1 = proc_cpu(pp), cpu_seconds(k.proc.pid), time.monotonic()
        shm = k.rpc_json("core.shmmem")
        resp.recording = False
        changes = STATE_RX.findall(k.log_text()[log0:])
    finally:
        k.stop(check=False)
        resp.stop()
    stats = resp.stats
    probes = sum(s.probes for s in stats.values())
    intervals = sum(s.intervals for s in stats.values())
    off = sum(s.off for s in stats.values())
    errs = [abs(e) for s in stats.values() for e in s.errors]
    mins = [s.min_iv for s in stats.values() if s.min_iv is not None]
    maxs = [s.max_iv for s in stats.values() if s.max_iv is not None]
    span = t1 - t0
    return {
        "targets": n, "seen": len(stats), "seconds": span,
        "rate": probes / span / n if n else 0,
        "intervals": intervals, "off": off,
        "off_pct": 100.0 * off / intervals if intervals else float("nan"),
        "p50": 100 * pct(errs, 50), "p99": 100 * pct(errs, 99),
        "max_err": 100 * max(errs) if errs else float("nan"),
        "min_iv": min(mins) if mins else float("nan"),
        "max_iv": max(maxs) if maxs else float("nan"),
        "changes": len(changes),
        "shm_mb": int(shm.get("real_used", 0)) / 1048576.0,
        "probe_cpu": pcpu1 - pcpu0, "kam_cpu": kcpu1 - kcpu0,
        "probe_us": 1e6 * (pcpu1 - pcpu0) / probes if probes else float("nan"),
        "kam_us": 1e6 * (kcpu1 - kcpu0) / probes if probes else float("nan"),
    }


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", default="100,1000,5000")
    ap.add_argument("--duration", type=float, default=60)
    ap.add_argument("--period", type=int, default=1)
    ap.add_argument("--timeout", type=int, default=1000,
                    help="oos_timeout ms (at most the period)")
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--children", type=int, default=2)
    ap.add_argument("--shm", type=int, default=256,
                    help="kamailio -m (MB): every probe keeps a tm "
                         "transaction for wt_timer (5 s) after its reply")
    ap.add_argument("--out")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="oos-sched-"))
    rows = []
    for n in [int(x) for x in args.targets.split(",")]:
        r = run(n, args, work)
        rows.append(r)
        print("targets %(targets)d: %(rate).3f probes/target/s, %(off)d of "
              "%(intervals)d intervals >10%% off, max error %(max_err).1f %%, "
              "%(changes)d state changes, probe process %(probe_us).1f us/probe"
              % r, flush=True)
    head = ("| targets | window s | probes/target/s | intervals | >10 % off "
            "| median error | p99 error | max error | shortest / longest "
            "interval s | false state changes | probe process CPU s "
            "(us/probe) | all kamailio CPU s (us/probe) | shm used MB |")
    lines = [head, "|" + "---|" * 13]
    for r in rows:
        lines.append(
            "| %(targets)d | %(seconds).0f | %(rate).3f | %(intervals)d "
            "| %(off)d (%(off_pct).2f %%) | %(p50).2f %% | %(p99).2f %% "
            "| %(max_err).1f %% | %(min_iv).3f / %(max_iv).3f | %(changes)d "
            "| %(probe_cpu).2f (%(probe_us).1f) | %(kam_cpu).2f (%(kam_us).1f) "
            "| %(shm_mb).1f |"
            % r)
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(
            "# genesys_oos probe schedule\n\n`bench/oos/schedule.py --targets "
            "%s --duration %.0f --period %d --shm %d`, %s, shared 2-core "
            "machine.\n\n%s\n" % (args.targets, args.duration, args.period,
                      args.shm,
                      time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                      table))


if __name__ == "__main__":
    main()
