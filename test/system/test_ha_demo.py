"""The README's demo (make run -> scripts/run-demo.sh): it must run to the
end within a minute, switch the pool to the backup and keep every call."""

import re
import subprocess
import time

import harness


def test_demo_runs_and_calls_continue():
    t0 = time.monotonic()
    p = subprocess.run(["bash", str(harness.TOP / "scripts" / "run-demo.sh")],
                       capture_output=True, text=True, timeout=90)
    elapsed = time.monotonic() - t0
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert elapsed < 60, elapsed
    assert "40004 SPR_PROXY_INITIALIZED" in out
    # the pool before (primary active) and after (backup active)
    assert re.search(r"active_uri: sip:127\.0\.77\.11:5060", out), out
    assert re.search(r"active_uri: sip:127\.0\.77\.12:5060", out), out
    assert "switchover from primary sip:127.0.77.11:5060 to backup" in out
    m = re.search(r"phone: (\d+) calls succeeded, (\d+) failed", out)
    assert m and m.group(1) == "30" and m.group(2) == "0", out
    m = re.search(r"the backup received (\d+) BYEs, (\d+) of them for calls "
                  r"set up on the primary", out)
    assert m and int(m.group(2)) >= 1, out
