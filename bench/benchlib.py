"""Benchmark helpers: per-call instruction counts (callgrind) and CPU time of
a real kamailio relaying real SIPp calls.

Instruction counts are stable on a noisy machine: the per-call cost is the
difference between two runs with different call counts, divided by the
difference in calls, summed over every kamailio process.  That removes
start-up and shutdown work and keeps only what each call costs.
"""

import glob
import os
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "test" / "system"))

import harness  # noqa: E402


# TLSF for shm and pkg: constant-time allocation, so the numbers measure the
# routing work and not the state of quick-malloc's free lists (which made
# 90 % of a call's instructions and varied from run to run)
MEM_ARGS = ["-x", "tlsf", "-X", "tlsf"]


# Fixed peers for the per-call comparisons. Every byte of a message costs
# instructions in every process that parses or copies it, so the configs
# compared must see byte-for-byte the same lengths: addresses of one length
# (fresh 127.x addresses grow from 127.a.b.7 to 127.a.b.62) and SIPp
# scenarios without SIPp's pid in tags and Call-IDs (bench/sipp/).
ADDR_KAMAILIO = "127.99.1.101"
ADDR_UAS = "127.99.1.102"
ADDR_UAC = "127.99.1.103"
ADDR_SILENT = "127.99.1.104"  # a backup that never answers
SIPP_DIR = HERE / "sipp"


def worker_pids(kam, kinds=("receiver",)):
    """pids of the SIP worker processes (core.psx)."""
    return [pid for pid, dsc in kam.processes()
            if any(k in dsc for k in kinds)]


def sum_callgrind(outdir, pids=None):
    """sum of instructions over callgrind files (only `pids` when given)."""
    total = 0
    for f in glob.glob(str(Path(outdir) / "cg.*")):
        if pids is not None and int(f.rsplit(".", 1)[1]) not in pids:
            continue
        with open(f, errors="replace") as fh:
            for line in fh:
                m = re.match(r"^(?:summary|totals):\s+(\d+)", line)
                if m:
                    total += int(m.group(1))
                    break
    return total


def under_callgrind(kam, outdir):
    """make kam (a harness.Kamailio, not started) run under callgrind, one
    output file per process in outdir (cg.<pid>); kamailio -c is unchanged"""
    orig = kam.argv

    def argv(check_only=False):
        a = orig(check_only)
        if check_only:
            return a
        return ["valgrind", "--tool=callgrind", "--trace-children=yes",
                "--callgrind-out-file=%s/cg.%%p" % outdir] + a
    kam.argv = argv
    return kam


def cpu_seconds(pgid):
    """utime+stime (s) of every process in a process group."""
    tick = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            stat = Path("/proc/%s/stat" % pid).read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid:  # field 5: pgrp
            total += int(fields[11]) + int(fields[12])
    return total / tick


def run_calls(workdir, kam, calls, rate, uas_scenario=SIPP_DIR / "uas_call.xml",
              uac_scenario=SIPP_DIR / "uac_call.xml", uac_args=None,
              uas_address=None, callee=None, uac_address=ADDR_UAC):
    """Run `calls` SIPp calls through kam; returns (uac_result, uas_result)."""
    # -aa: the UAS answers OPTIONS (dispatcher's keep-alive probes) with
    # 200 outside the call scenario instead of failing a call for each
    # SIPp counts every OPTIONS it answers with -aa as a call: a UAS limited
    # to `calls` would leave the last INVITEs of a probed run unanswered
    # (408 from the proxy, a different cost); it runs until the UAC is done
    uas = harness.Sipp(workdir, uas_scenario, "uas-%d" % calls,
                       calls=calls + 1000, address=uas_address, timeout=600,
                       trace=False, extra_args=["-aa"])
    uas.start()
    uac = harness.Sipp(workdir, uac_scenario, "uac-%d" % calls, calls=calls,
                       address=uac_address,
                       remote="%s:%d" % (kam.address, kam.port), timeout=600,
                       trace=False,
                       extra_args=["-r", str(rate), "-l", "200",
                                   "-cid_str", "%u-4242@%s",
                                   "-key", "callee",
                                   callee or "%s:%d" % (uas.address, uas.port)]
                       + list(uac_args or []))
    r = uac.run()
    u = uas.wait(timeout=2)  # killed once the last call is over
    return r, u


def instructions_per_call(workdir, cfg_text, defines=None, calls=(50, 250),
                          rate=20, **kw):
    """callgrind instructions per call in the SIP receiver processes (where
    requests and replies are routed; timer processes do time-driven work
    that depends on the run's length, not on its calls)."""
    totals = []
    for n in calls:
        d = Path(workdir) / ("cg-%d" % n)
        d.mkdir(parents=True, exist_ok=True)
        k = harness.Kamailio(d / "k", cfg_text=cfg_text,
                             defines=dict(defines or {}), mem_debug=False,
                             extra_args=MEM_ARGS, address=ADDR_KAMAILIO)
        k.defines["CHILDREN"] = "1"
        under_callgrind(k, d)
        k.start(timeout=120)
        pids = worker_pids(k)
        time.sleep(1)
        r, u = run_calls(d, k, n, rate, **kw)
        time.sleep(1)
        k.stop(check=False)
        # under callgrind kamailio is ~50x slower: a SIPp retransmission can
        # now and then overtake a slow relay and SIPp fails that call; the
        # call still went through the proxy, so it is counted, but more than
        # 2 % failures means the run measured something else
        if r.successful < n * 0.98:
            raise RuntimeError("only %d of %d calls succeeded under callgrind: %s"
                               % (r.successful, n, r.screen))
        # retransmitted messages are relayed and counted too: say so
        rtx = sum(int(x.stats.get("Retransmissions(C)", 0) or 0)
                  for x in (r, u) if x is not None)
        if rtx:
            print("warning: %d SIPp retransmissions in the %d-call run: the "
                  "count per call includes them" % (rtx, n), file=sys.stderr,
                  flush=True)
        totals.append(sum_callgrind(d, pids))
    return (totals[1] - totals[0]) / float(calls[1] - calls[0])


def cpu_seconds_per(workdir, cfg_text, defines=None, calls=10000, rate=1000, **kw):
    """kamailio CPU seconds (user+sys, all processes) for `calls` calls."""
    d = Path(workdir) / "cpu"
    d.mkdir(parents=True, exist_ok=True)
    k = harness.Kamailio(d / "k", cfg_text=cfg_text, defines=dict(defines or {}),
                         mem_debug=False, extra_args=MEM_ARGS,
                         address=ADDR_KAMAILIO)
    k.start()
    time.sleep(1)
    before = cpu_seconds(k.proc.pid)
    r, u = run_calls(d, k, calls, rate, **kw)
    after = cpu_seconds(k.proc.pid)
    k.stop(check=False)
    return after - before, r.successful
