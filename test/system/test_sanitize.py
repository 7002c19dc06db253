"""Sanitizers on the real process (issue 14 point 6): kamailio running our
modules built with AddressSanitizer and UBSan (make asan-modules:
build/asan/<m>/<m>.so, the runtimes preloaded into Debian's kamailio) and
Kamailio's own memory debugging (-x qm -X qm: overruns, double frees and
leaks inside its pkg/shm allocators, which ASan does not see) through a
short soak: calls, operator switchovers, pool reloads, TLS phones
registering and re-registering over their connections (bench/soak/soak.py).
Any "AddressSanitizer" or "runtime error:" line in the log, a process lost,
a failed call, registration or RPC, or an ERROR from our modules fails it.

`make sanitize` runs a wider set of system test files the same way
(GENESYS_ASAN)."""

import subprocess
import sys

import harness

sys.path.insert(0, str(harness.TOP / "bench" / "soak"))
import soak  # noqa: E402

ASAN = harness.TOP / "build" / "asan"


def test_asan_ubsan_calls_switchovers_reloads_tls_phones(tmp_path):
    r = subprocess.run(["make", "--no-print-directory", "asan-modules"],
                       cwd=str(harness.TOP), capture_output=True, text=True,
                       timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    res = soak.run(duration=30, rate=20, hold=1.0, phones=20, reg_interval=4,
                   switchover_every=8, reload_every=3, children=2,
                   asan=str(ASAN), mem_debug=True, workdir=tmp_path,
                   log=lambda *a: None)
    # slopes mean nothing in 30 s (make soak-short measures them)
    bad = soak.verdict(res, max_slope=float("inf"))
    assert not bad, (bad, {k: v for k, v in res.items() if k != "samples"})
    assert res["asan_mapped"] is True
    assert res["calls_ok"] == 600 and res["switchovers"] >= 3
    assert res["reloads"] >= 9 and res["registrations"] >= 20 * 6
    # the switchovers moved calls to both members
    assert res["member_primary"].get("INVITE") and \
        res["member_backup"].get("INVITE"), res
