#!/usr/bin/python3
"""Failover benchmark: calls through a proxy while the primary SIP Server of
a pair dies, genesys_ha side by side with stock Kamailio dispatcher.

Scenario (issue 9): a SIPp UAC places RATE calls/s through the proxy, each
call held HOLD s then ended with a BYE along its route set.  KILL_AT s after
the first call the primary SIP Server is
  kill:  SIGKILLed (its port is closed: the kernel answers ICMP port
         unreachable to anything sent to it), or
  stop:  SIGSTOPped (its socket stays open: silence);
PROMOTE_AFTER s later the backup is promoted.  Before that the backup
behaves as a Genesys hot-standby backup: its socket is open but it ignores
every request, OPTIONS included; after it answers OPTIONS 200, takes calls,
and answers the BYEs of calls set up on the primary with 200 (the pair
shares call state).  The SIP Servers are bench/failover/sipserver.py
(test/system/ha_util.Peer in a process of its own).

Configs compared in one run:
  genesys_ha     etc/kamailio.cfg as shipped, POOL_FILE with the pair
  genesys_ha_1s  the same with genesys_oos oos_check 1, oos_force 1,
                 oos_timeout 1000 (the probing dispatcher gets)
  dispatcher     bench/failover/dispatcher.cfg: stock dispatcher as a
                 Kamailio expert would set it up (alg 8, pings every 1 s,
                 thresholds 1, ds_mark_dst + ds_next_dst in failure_route,
                 the reference config's INVITE failover timer)

Per run (from SIPp's message trace, one record per call):
  failed        calls whose INVITE got no 200 (non-2xx final or none) or
                whose BYE got no 200
  > 2 s         calls answered (200) more than 2 s after the first INVITE
  first backup  failure -> first 200 from the backup at the UAC
  pre-failure BYEs  calls answered by the primary whose BYE was sent after
                the failure: how many got a 200 (the backup's own count of
                BYEs for dialogs it never saw is in the JSON)

Always the kamailio and modules of this tree (test/system/harness.py:
/usr/sbin/kamailio -L <stock modules>:<tree>/modules).  Loopback only
(fresh 127.x.y.z addresses); every process started is stopped at the end,
also on errors and on SIGINT/SIGTERM; every wait is bounded.

Usage: bench/failover/failover.py [--configs genesys_ha,genesys_ha_1s,dispatcher]
         [--variants kill,stop] [--repeats 2] [--rate 100] [--duration 15]
         [--hold 5] [--kill-at 6] [--phase-jitter 0] [--promote-after 1]
         [--out build/bench-failover] [--report OUT.json]
Writes OUT.md (tables), OUT.json (every call of every run), OUT.svg (plot).
"""

import argparse
import collections
import datetime
import json
import os
import random
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import benchlib  # noqa: E402  (puts test/system on sys.path)
import harness  # noqa: E402
import ha_util  # noqa: E402
import svgplot  # noqa: E402

PY = "/usr/bin/python3"
SIPSERVER = HERE / "sipserver.py"
UAC_XML = HERE / "uac_failover.xml"
DISPATCHER_CFG = HERE / "dispatcher.cfg"
LATE_S = 2.0


def reference_fr_timer():
    """SIPS_FR_TIMER of etc/kamailio.cfg: dispatcher gets the same INVITE
    failover timer as the reference config"""
    m = re.search(r"#!define SIPS_FR_TIMER (\d+)",
                  harness.REFERENCE_CFG.read_text())
    return int(m.group(1)) if m else 4000


# ---- configs --------------------------------------------------------------

def _ha_setup(oos):
    def setup(workdir, pri, bak):
        pool = ha_util.write_pool(
            Path(workdir) / "pool.xml",
            [("SIPS_Bench", "sip:%s:5060" % pri, "sip:%s:5060" % bak, None)])
        text = (harness.REFERENCE_CFG.read_text() if oos is None
                else ha_util.reference_cfg(oos))
        return text, {"POOL_FILE": '"%s"' % pool}
    return setup


def _ha_ready(k, pri, bak):
    """the pair uses the primary, the silent backup has been seen down"""
    p = ha_util.pool(k)["SIPS_Bench"]
    return (p["active"] == "primary"
            and p["members"]["primary"]["state"] == "active"
            and p["members"]["backup"]["state"] == "down")


def _ds_setup(workdir, pri, bak):
    ds = Path(workdir) / "dispatcher.list"
    # set 1: the primary first (priority 10), the backup second (5)
    ds.write_text("1 sip:%s:5060 0 10\n1 sip:%s:5060 0 5\n" % (pri, bak))
    return DISPATCHER_CFG.read_text(), {
        "DS_LIST": '"%s"' % ds, "SIPS_FR_TIMER": str(reference_fr_timer())}


def _ds_ready(k, pri, bak):
    """primary active, backup inactive (its probe timed out)"""
    flags = {}
    for rec in k.rpc_json("dispatcher.list").get("RECORDS", []):
        for t in rec["SET"]["TARGETS"]:
            dest = t["DEST"]
            flags[dest["URI"][len("sip:"):].rsplit(":", 1)[0]] = dest["FLAGS"]
    return flags.get(pri, "").startswith("A") and flags.get(bak, "").startswith("I")


CONFIGS = {
    "genesys_ha": {"setup": _ha_setup(None), "ready": _ha_ready},
    "genesys_ha_1s": {"setup": _ha_setup({"oos_check": 1, "oos_force": 1,
                                          "oos_timeout": 1000}),
                      "ready": _ha_ready},
    "dispatcher": {"setup": _ds_setup, "ready": _ds_ready},
}


# ---- processes --------------------------------------------------------------

class Procs:
    """every process a run starts, stopped in reverse order whatever happens"""

    def __init__(self):
        self.items = []

    def add(self, kind, obj):
        self.items.append((kind, obj))
        return obj

    def cleanup(self):
        for kind, obj in reversed(self.items):
            try:
                if kind == "kamailio":
                    obj.stop(check=False)
                elif kind == "sipp":
                    obj.kill()
                elif obj.poll() is None:
                    # SIGKILL works on a stopped process too
                    os.killpg(obj.pid, signal.SIGKILL)
                    obj.wait(timeout=5)
            except (OSError, subprocess.SubprocessError, harness.HarnessError):
                pass
        self.items = []


def start_member(procs, workdir, name, address, standby):
    stats = Path(workdir) / ("%s.json" % name)
    log = open(Path(workdir) / ("%s.log" % name), "wb")
    argv = [PY, str(SIPSERVER), "--address", address, "--stats", str(stats)]
    if standby:
        argv.append("--standby")
    p = procs.add("member", subprocess.Popen(
        argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True))
    log.close()
    wait_ready(p, log.name, 10, "SIP Server %s" % name)
    return p, stats


def wait_ready(p, log_path, timeout, what):
    """until sipserver.py says "ready" (bound, signal handlers set)"""
    deadline = time.monotonic() + timeout
    while "ready" not in harness.tail(log_path, 5).split():
        if p.poll() is not None or time.monotonic() > deadline:
            raise harness.HarnessError("%s did not start:\n%s"
                                       % (what, harness.tail(log_path)))
        time.sleep(0.02)


def wait_until(pred, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        try:
            if pred():
                return
        except (KeyError, harness.HarnessError):
            pass
        if time.monotonic() > deadline:
            raise harness.HarnessError("%s not reached within %.0f s" % (what, timeout))
        time.sleep(0.1)


def sleep_until(t):
    while True:
        left = t - time.time()
        if left <= 0:
            return
        time.sleep(min(left, 0.05))


# ---- SIPp trace -------------------------------------------------------------

_TRACE_HDR = re.compile(
    r"^-+ (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n(?:UDP|TCP) message (sent|received) "
    r"(?:\(\d+ bytes\)|\[\d+\] bytes ?):\n", re.M)


def _hdr(text, name, compact):
    m = re.search(r"^(?:%s|%s)\s*:\s*(.*?)\s*$" % (name, compact), text,
                  re.M | re.I)
    return m.group(1) if m else None


def parse_calls(trace_path, members):
    """per Call-ID: INVITE sent, its final (code, time, answering member),
    BYE sent, its final; times in seconds since the epoch"""
    text = Path(trace_path).read_text(errors="replace")
    parts = _TRACE_HDR.split(text)
    calls = collections.OrderedDict()
    for i in range(1, len(parts) - 2, 3):
        ts = datetime.datetime.strptime(parts[i], "%Y-%m-%d %H:%M:%S.%f").timestamp()
        direction, msg = parts[i + 1], parts[i + 2].strip("\n")
        cid = _hdr(msg, "Call-ID", "i")
        cseq = _hdr(msg, "CSeq", "") or ""
        if not cid:
            continue
        c = calls.setdefault(cid, {"inv_sent": None, "inv_code": None,
                                   "inv_final": None, "member": None,
                                   "bye_sent": None, "bye_code": None,
                                   "bye_final": None})
        first = msg.split("\n", 1)[0]
        if direction == "sent":
            if first.startswith("INVITE ") and c["inv_sent"] is None:
                c["inv_sent"] = ts
            elif first.startswith("BYE ") and c["bye_sent"] is None:
                c["bye_sent"] = ts
            continue
        m = re.match(r"SIP/2\.0 (\d{3})", first)
        if not m or int(m.group(1)) < 200:
            continue
        code = int(m.group(1))
        if cseq.endswith("INVITE") and c["inv_code"] is None:
            c["inv_code"], c["inv_final"] = code, ts
            contact = _hdr(msg, "Contact", "m") or ""
            for role, addr in members.items():
                if "@%s:" % addr in contact:
                    c["member"] = role
        elif cseq.endswith("BYE") and c["bye_code"] is None:
            c["bye_code"], c["bye_final"] = code, ts
    return calls


def analyse(calls, t_fail, promote_after, expected):
    """the figures of one run; call times made relative to the failure"""
    out_calls = []
    inv_codes = collections.Counter()
    bye_codes = collections.Counter()
    late, answer_times = 0, []
    first_backup = None
    pre_total = pre_ok = 0
    for cid, c in calls.items():
        if c["inv_sent"] is None:
            continue
        rec = {"inv_sent": round(c["inv_sent"] - t_fail, 4),
               "inv_code": c["inv_code"], "member": c["member"],
               "answer_s": None, "bye_sent": None, "bye_code": c["bye_code"]}
        if c["inv_code"] == 200:
            a = c["inv_final"] - c["inv_sent"]
            rec["answer_s"] = round(a, 4)
            answer_times.append(a)
            if a > LATE_S:
                late += 1
            if c["member"] == "backup":
                d = c["inv_final"] - t_fail
                first_backup = d if first_backup is None else min(first_backup, d)
            if c["bye_sent"] is not None:
                rec["bye_sent"] = round(c["bye_sent"] - t_fail, 4)
            if c["bye_code"] != 200:
                bye_codes[c["bye_code"] or "none"] += 1
            if c["member"] == "primary" and c["bye_sent"] is not None \
                    and c["bye_sent"] >= t_fail:
                pre_total += 1
                pre_ok += c["bye_code"] == 200
        else:
            inv_codes[c["inv_code"] or "none"] += 1
        out_calls.append(rec)
    inv_failed = sum(inv_codes.values())
    bye_failed = sum(bye_codes.values())
    answer_times.sort()
    return {
        "calls": len(out_calls), "expected_calls": expected,
        "failed": inv_failed + bye_failed + max(0, expected - len(out_calls)),
        "inv_failed": inv_failed, "bye_failed": bye_failed,
        "inv_fail_codes": dict((str(k), v) for k, v in inv_codes.items()),
        "bye_fail_codes": dict((str(k), v) for k, v in bye_codes.items()),
        "late": late,
        "answer_max_s": answer_times[-1] if answer_times else None,
        "answer_p99_s": answer_times[int(len(answer_times) * 0.99) - 1]
        if answer_times else None,
        "first_backup_answer_s": first_backup,
        "pre_failure_byes": pre_total, "pre_failure_byes_ok": pre_ok,
        "promote_after": promote_after,
        "calls_detail": out_calls,
    }


# ---- one run ----------------------------------------------------------------

def run_one(config, variant, args, workdir):
    procs = Procs()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    pri, bak, kam_addr, uac_addr = (harness.next_address() for _ in range(4))
    n_calls = int(args.rate * args.duration)
    try:
        primary, _ = start_member(procs, workdir, "primary", pri, standby=False)
        backup, backup_stats = start_member(procs, workdir, "backup", bak, standby=True)
        cfg_text, defines = CONFIGS[config]["setup"](workdir, pri, bak)
        defines["CHILDREN"] = str(args.children)
        k = harness.Kamailio(workdir / "k", cfg_text=cfg_text, defines=defines,
                             address=kam_addr, mem_debug=False)
        procs.add("kamailio", k)
        k.start(timeout=20)
        wait_until(lambda: CONFIGS[config]["ready"](k, pri, bak), 15,
                   "%s: primary active, backup seen down" % config)
        cpu0 = benchlib.cpu_seconds(k.proc.pid)
        load0 = os.getloadavg()[0]
        uac = harness.Sipp(
            workdir, UAC_XML, "uac", address=uac_addr,
            remote="%s:%d" % (k.address, k.port), calls=n_calls,
            service="2000", trace=True,
            timeout=int(args.duration + args.hold + 40),
            extra_args=["-r", str(args.rate), "-l", str(n_calls),
                        "-d", str(int(args.hold * 1000)),
                        # a failed call ends quietly (no BYE/CANCEL of SIPp's own)
                        "-default_behaviors", "abortunexp",
                        # no call waits more than this for a reply
                        "-recv_timeout", "20000"])
        procs.add("sipp", uac)
        t0 = time.time()
        uac.start()
        fail_at = args.kill_at + random.uniform(0, args.phase_jitter)
        sleep_until(t0 + fail_at)
        t_fail = time.time()
        os.kill(primary.pid, signal.SIGKILL if variant == "kill" else signal.SIGSTOP)
        sleep_until(t_fail + args.promote_after)
        os.kill(backup.pid, signal.SIGUSR1)
        r = uac.wait()
        cpu = benchlib.cpu_seconds(k.proc.pid) - cpu0
        load1 = os.getloadavg()[0]
        backup.send_signal(signal.SIGTERM)
        try:
            backup.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        k.stop(check=False)
        log_failures = k.failures()
    finally:
        procs.cleanup()
    calls = parse_calls(uac.msg_file, {"primary": pri, "backup": bak})
    res = analyse(calls, t_fail, args.promote_after, n_calls)
    try:
        res["backup"] = json.loads(Path(backup_stats).read_text())
    except (OSError, ValueError):
        res["backup"] = {}
    res.update({"config": config, "variant": variant,
                "fail_at_s": round(t_fail - t0, 3),
                "sipp_failed": r.failed, "sipp_rc": r.rc,
                "kamailio_cpu_s": round(cpu, 2),
                "loadavg": [round(load0, 2), round(load1, 2)],
                "kamailio_log_failures": log_failures[:10]})
    return res


# ---- report -----------------------------------------------------------------

def fmt_s(v):
    return "-" if v is None else "%.2f" % v


def codes(d):
    return ", ".join("%s x%s" % (v, k) for k, v in sorted(d.items())) or "-"


def failures(n, by_code):
    return "%d (%s)" % (n, codes(by_code)) if n else "0"


def table(results):
    lines = ["| config | variant | run | calls | failed | INVITE failed | "
             "BYE failed | answered > 2 s | slowest answer s | "
             "failure -> first backup answer s | pre-failure BYEs delivered | "
             "kamailio CPU s | load avg |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append("| %s | %s | %d | %d | %d | %s | %s | %d | %s | %s | "
                     "%d / %d | %.2f | %.1f |" % (
                         r["config"], r["variant"], r["run"], r["calls"],
                         r["failed"],
                         failures(r["inv_failed"], r["inv_fail_codes"]),
                         failures(r["bye_failed"], r["bye_fail_codes"]),
                         r["late"], fmt_s(r["answer_max_s"]),
                         fmt_s(r["first_backup_answer_s"]),
                         r["pre_failure_byes_ok"], r["pre_failure_byes"],
                         r["kamailio_cpu_s"], r["loadavg"][1]))
    return "\n".join(lines)


def write_plot(path, results, configs, variants):
    """the plot of the first run of each (config, variant)"""
    plot_runs = {}
    for r in results:
        if r["run"] == 1:
            r = dict(r, calls=r["calls_detail"],
                     summary_line="%d/%d failed, %d answered > 2 s, first backup "
                     "answer at +%s s" % (
                         r["failed"], r["expected_calls"], r["late"],
                         fmt_s(r["first_backup_answer_s"])))
            plot_runs[(r["config"], r["variant"])] = r
    svgplot.write(path, plot_runs, configs, variants)


def write_report(out, head, results, configs, variants, argv):
    """OUT.md (table), OUT.json (everything), OUT.svg (plot); prints the table"""
    tab = table(results)
    print()
    print(head)
    print(tab)
    Path(str(out) + ".md").write_text(head + "\n\n" + tab + "\n")
    with open(str(out) + ".json", "w") as fh:
        json.dump({"args": argv, "head": head, "results": results}, fh)
    write_plot(str(out) + ".svg", results, configs, variants)
    print("\nwritten: %s.md, %s.json, %s.svg" % (out, out, out))


def tree_version():
    """the commit of the tree measured (+ if its files differ from it)"""
    top = str(HERE.parents[1])
    try:
        rev = subprocess.run(["git", "-C", top, "rev-parse", "--short", "HEAD"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "-C", top, "status", "--porcelain",
                                "modules", "etc"], capture_output=True,
                               text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (rev or "?") + ("+" if dirty else "")


def _interrupted(_sig, _frm):
    raise KeyboardInterrupt()


def runs(args, configs, variants, tmp, results):
    for rep in range(1, args.repeats + 1):
        for variant in variants:
            for config in configs:
                t = time.time()
                # short names: kamailio's ctl socket path must stay under
                # 104 characters
                r = run_one(config, variant, args,
                            Path(tmp) / ("%d" % (len(results) + 1)))
                r["run"] = rep
                r["wall_s"] = round(time.time() - t, 1)
                results.append(r)
                print("%-14s %-4s run %d: %4d calls, %3d failed (INVITE %s, "
                      "BYE %s), %3d answered > 2 s, slowest %s s, first "
                      "backup answer %s s, pre-failure BYEs %d/%d, %.0f s"
                      % (config, variant, rep, r["calls"], r["failed"],
                         failures(r["inv_failed"], r["inv_fail_codes"]),
                         failures(r["bye_failed"], r["bye_fail_codes"]),
                         r["late"], fmt_s(r["answer_max_s"]),
                         fmt_s(r["first_backup_answer_s"]),
                         r["pre_failure_byes_ok"], r["pre_failure_byes"],
                         r["wall_s"]), flush=True)
                if r["kamailio_log_failures"]:
                    print("  kamailio log: %s" % r["kamailio_log_failures"][0],
                          flush=True)



def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="genesys_ha,genesys_ha_1s,dispatcher",
                    help="comma-separated, from: %s" % ", ".join(CONFIGS))
    ap.add_argument("--variants", default="kill,stop",
                    help="kill (SIGKILL: ICMP), stop (SIGSTOP: silence)")
    ap.add_argument("--repeats", type=int, default=2,
                    help="runs of every config and variant")
    ap.add_argument("--rate", type=float, default=100, help="calls per second")
    ap.add_argument("--duration", type=float, default=15,
                    help="seconds of new calls (calls = rate x duration)")
    ap.add_argument("--hold", type=float, default=5, help="call length, s")
    ap.add_argument("--kill-at", type=float, default=6,
                    help="s after the first call the primary fails")
    ap.add_argument("--phase-jitter", type=float, default=0, metavar="S",
                    help="the failure comes up to S s (uniform) after "
                    "--kill-at, so that it falls at a random phase of the "
                    "probe period (default 0: the same phase in every run)")
    ap.add_argument("--promote-after", type=float, default=1,
                    help="s after the failure the backup is promoted")
    ap.add_argument("--children", type=int, default=4,
                    help="kamailio SIP worker processes (CHILDREN)")
    ap.add_argument("--out", default=str(HERE.parents[1] / "build" / "bench-failover"),
                    help="OUT.md, OUT.json, OUT.svg are written")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--report", metavar="JSON",
                    help="no runs: rewrite OUT.md and OUT.svg from the OUT.json "
                    "of earlier runs")
    args = ap.parse_args()
    if args.report:
        data = json.loads(Path(args.report).read_text())
        res = data["results"]
        write_report(args.out, data.get("head", ""), res,
                     list(dict.fromkeys(r["config"] for r in res)),
                     list(dict.fromkeys(r["variant"] for r in res)),
                     data.get("args", {}))
        return 0
    configs = [c for c in args.configs.split(",") if c]
    variants = [v for v in args.variants.split(",") if v]
    for c in configs:
        if c not in CONFIGS:
            ap.error("unknown config %s (known: %s)" % (c, ", ".join(CONFIGS)))
    for v in variants:
        if v not in ("kill", "stop"):
            ap.error("unknown variant %s (kill, stop)" % v)
    if args.kill_at + args.phase_jitter + args.promote_after >= args.duration:
        ap.error("the backup must be promoted before the last call starts "
                 "(--kill-at + --phase-jitter + --promote-after < --duration)")

    # SIGTERM (make interrupted, timeout) unwinds like Ctrl-C: every run's
    # finally stops what it started
    signal.signal(signal.SIGTERM, _interrupted)

    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="bench-failover-")
    results = []
    started = time.time()
    try:
        runs(args, configs, variants, tmp, results)
    except BaseException:
        print("work directory kept: %s" % tmp, file=sys.stderr)
        raise
    if not args.keep:
        subprocess.run(["rm", "-rf", tmp])
    else:
        print("work directory kept: %s" % tmp)

    head = ("Failover benchmark, %s UTC, tree %s: %g calls/s for %g s (%d "
            "calls), calls held %g s, primary failed %g s after the first "
            "call, backup promoted %g s later; %d runs in %.0f s; kamailio "
            "CHILDREN=%d; %d CPUs, load average %.1f at the end."
            % (time.strftime("%Y-%m-%d %H:%M", time.gmtime(started)),
               tree_version(), args.rate,
               args.duration, int(args.rate * args.duration), args.hold,
               args.kill_at, args.promote_after, len(results),
               time.time() - started, args.children, os.cpu_count(),
               os.getloadavg()[0]))
    write_report(out, head, results, configs, variants, vars(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
