#!/usr/bin/env python3
"""CPU cost per OPTIONS probe: genesys_oos next to dispatcher, same run.

Four kamailio processes run at the same time on their own loopback
addresses, each probing the same number of targets every second:
  - genesys_oos as configured by default (transport check, 8 batches of
    probes per period),
  - genesys_oos with transport_check=0 (replies and timeouts only),
  - genesys_oos with transport_check=0 and probe_slots=1 (every probe of a
    period in one burst, as dispatcher sends them),
  - dispatcher with ds_ping_interval=1 and ds_probing_mode=1.
Each has its own SIPp UAS answering 200; the targets are distinct URIs on
that UAS (sip:t<N>@addr:port), so every probe is a real OPTIONS
transaction answered by a real peer.  After a warm-up, the CPU time
(utime+stime of every kamailio process) and the number of probes the UAS
answered are sampled over a window; the cost per probe is their ratio.

    /usr/bin/python3 bench/oos/probe_cost.py [--targets 200] [--window 20]
        [--out bench/oos/RESULTS.md]
"""

import argparse
import csv
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOP = HERE.parents[1]
sys.path.insert(0, str(TOP / "test" / "system"))

import harness  # noqa: E402
from cfgbuild import kamailio_cfg  # noqa: E402

sys.path.insert(0, str(TOP / "bench"))
from benchlib import cpu_seconds  # noqa: E402

BASE = kamailio_cfg(debug=1, children=2, modules=("kex", "tm", "sl"),
                    body="""modparam("tm", "fr_timer", 4000)
%s
request_route { sl_send_reply("404", "Not here"); }
""")


def oos_cfg(targets, transport_check, slots=8):
    lines = ['loadmodule "genesys_oos"',
             'modparam("genesys_oos", "probe_slots", %d)' % slots,
             'modparam("genesys_oos", "oos_check", 1)',
             'modparam("genesys_oos", "oos_force", 1)',
             'modparam("genesys_oos", "oos_timeout", 1000)',
             'modparam("genesys_oos", "max_targets", %d)' % max(256, len(targets)),
             'modparam("genesys_oos", "transport_check", %d)' % transport_check]
    lines += ['modparam("genesys_oos", "target", "%s")' % t for t in targets]
    return BASE % "\n".join(lines)


def ds_cfg(targets, listfile):
    listfile.write_text("".join("1 %s\n" % t for t in targets))
    lines = ['loadmodule "dispatcher"',
             'modparam("dispatcher", "list_file", "%s")' % listfile,
             'modparam("dispatcher", "ds_ping_interval", 1)',
             'modparam("dispatcher", "ds_probing_mode", 1)',
             'modparam("dispatcher", "ds_ping_from", "sip:dispatcher@localhost")']
    return BASE % "\n".join(lines)


class Uas:
    """A SIPp UAS answering OPTIONS with 200, counting answered probes."""

    def __init__(self, workdir, name):
        self.address = harness.next_address()
        self.stat = workdir / ("%s-stat.csv" % name)
        self.proc = subprocess.Popen(
            [harness.SIPP, "-sf", str(harness.SIPP_DIR / "oos_uas_reply.xml"),
             "-i", self.address, "-p", "5060", "-m", "100000000", "-nostdin",
             "-trace_stat", "-stf", str(self.stat), "-fd", "1"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True)

    def answered(self):
        rows = list(csv.reader(self.stat.read_text().splitlines(), delimiter=";"))
        return int(dict(zip(rows[0], rows[-1]))["SuccessfulCall(C)"])

    def stop(self):
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--warmup", type=float, default=5)
    ap.add_argument("--window", type=float, default=20)
    ap.add_argument("--out")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="oos-bench-"))
    runs = []
    procs = []
    try:
        for name in ("genesys_oos", "genesys_oos transport_check=0",
                     "genesys_oos transport_check=0 probe_slots=1",
                     "dispatcher"):
            tag = re.sub(r"\W+", "_", name)
            uas = Uas(work, tag)
            targets = ["sip:t%d@%s:5060" % (i, uas.address)
                       for i in range(args.targets)]
            if name == "dispatcher":
                cfg = ds_cfg(targets, work / "dispatcher.list")
            else:
                cfg = oos_cfg(targets, 0 if "check=0" in name else 1,
                              1 if "slots=1" in name else 8)
            # TLSF for shm and pkg: constant-time allocation, so the numbers do not
            # depend on the state of quick-malloc's free lists
            k = harness.Kamailio(work / tag, cfg_text=cfg, mem_debug=False,
                                 extra_args=["-x", "tlsf", "-X", "tlsf"])
            runs.append({"name": name, "uas": uas, "kam": k})
            procs.append(uas)
        time.sleep(0.5)
        for r in runs:
            r["kam"].start()
        time.sleep(args.warmup)
        for r in runs:
            r["cpu0"] = cpu_seconds(r["kam"].proc.pid)
            r["n0"] = r["uas"].answered()
        time.sleep(args.window)
        for r in runs:
            r["cpu1"] = cpu_seconds(r["kam"].proc.pid)
            r["n1"] = r["uas"].answered()
    finally:
        for r in runs:
            r["kam"].stop(check=False)
        for u in procs:
            u.stop()

    lines = ["| prober | targets | probes answered in %.0f s | CPU s | CPU us per probe |"
             % args.window, "|---|---|---|---|---|"]
    for r in runs:
        n = r["n1"] - r["n0"]
        cpu = r["cpu1"] - r["cpu0"]
        per = cpu / n * 1e6 if n else float("nan")
        r["per"] = per
        lines.append("| %s | %d | %d | %.2f | %.1f |"
                     % (r["name"], args.targets, n, cpu, per))
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(
            "# genesys_oos probe cost\n\n"
            "`bench/oos/probe_cost.py --targets %d --window %.0f`, %s, on a "
            "shared 2-core machine; the four probers ran at the same time, "
            "each against its own SIPp UAS, every target probed every second. "
            "CPU is utime+stime of all kamailio processes (including the "
            "SIP workers that receive the replies).\n\n%s\n"
            % (args.targets, args.window, time.strftime("%Y-%m-%d"), table))


if __name__ == "__main__":
    main()
