#!/usr/bin/python3
"""Convergence of a switchover across a pool sharing decisions over DMQ
(issue 11): N kamailio proxies (reference kamailio.cfg, WITH_DMQ) on
loopback, one SIP Server pair (Python responders); an operator switchover
on proxy 0, then the time until each other proxy's genesys_ha.pool shows
the new member (one poller thread per proxy, kamcmd in a loop: the figure
is an upper bound with the resolution of one kamcmd call, ~3-8 ms), and the
switchovers applied on the others (dmq_applied).  Alternates the switchover
between proxies 0 and N-1.

  bench/dmq_convergence.py [--sizes 3,5,9] [--rounds 10]
  bench/dmq_convergence.py --options [--sizes 3,5,9] [--probing 1]

--options: OPTIONS per SIP Server per second (probes every 1 s) received
by the two members over 5 s once the pool settled, with every proxy probing
(dmq_probing 0) and with distributed probing (dmq_probing k).

Not a pass/fail test: test/system/test_ha_dmq.py checks the behaviour.
"""

import argparse
import contextlib
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "test" / "system"))

import harness  # noqa: E402
import ha_util as hu  # noqa: E402
from dmq_util import Pool  # noqa: E402


def applied(k):
    return k.statistics("genesys_ha:").get("dmq_applied", 0)


@contextlib.contextmanager
def started_pool(n, tmp, extra=None, timeout=10.0):
    """n proxies of one pool (dmq_util.Pool, one SIP worker each) and its
    SIP Server pair (Python responders), all stopped at the end: yields
    (pool, primary, backup)"""
    made = []

    def factory(name="kamailio", **kw):
        k = harness.Kamailio(tmp / name, **kw)
        made.append(k)
        return k.start()

    pri, bak = hu.Peer(), hu.Peer()
    pri.start()
    bak.start()
    try:
        pool = Pool(factory, tmp, [("SIPS_A", pri.uri, bak.uri, None)], n=n,
                    extra=dict({"CHILDREN": "1"}, **(extra or {})))
        pool.start_all(timeout=timeout)
        yield pool, pri, bak
    finally:
        for k in made:
            k.stop(check=False)
        pri.stop()
        bak.stop()


def run(n, rounds, tmp):
    with started_pool(n, tmp) as (pool, pri, bak):
        ks = pool.ks
        for k in ks:
            hu.wait_pool(k, lambda p: p["SIPS_A"]["members"]["backup"][
                "state"] == "active", timeout=15)
        worst, allv = [], []
        for r in range(rounds):
            src = ks[0] if r % 2 == 0 else ks[-1]
            want = "backup" if r % 2 == 0 else "primary"
            others = [k for k in ks if k is not src]
            a0 = sum(applied(k) for k in others)
            seen = {}

            def poll(k, t0):
                while time.monotonic() - t0 < 5:
                    if hu.pool(k)["SIPS_A"]["active"] == want:
                        seen[k.address] = time.monotonic() - t0
                        return
                    time.sleep(0.001)

            src.rpc("genesys_ha.switchover", "SIPS_A")
            t0 = time.monotonic()
            ths = [threading.Thread(target=poll, args=(k, t0)) for k in others]
            for t in ths:
                t.start()
            for t in ths:
                t.join()
            assert len(seen) == len(others), (r, seen)
            a1 = sum(applied(k) for k in others)
            assert a1 - a0 == len(others), (a0, a1)
            worst.append(max(seen.values()) * 1000)
            allv += [v * 1000 for v in seen.values()]
            time.sleep(0.2)
        return worst, allv


def options_rate(n, k, tmp, window=5.0):
    with started_pool(n, tmp, {"DMQ_PROBING": str(k)}, timeout=20) as (
            _, pri, bak):
        time.sleep(4)  # peers settled (peer timeout 1 s) and periods skipped
        t0 = time.monotonic()
        time.sleep(window)
        rates = []
        for m in (pri, bak):
            with m._lock:
                c = sum(1 for t, text, _ in m.received
                        if t >= t0 and text.startswith("OPTIONS "))
            rates.append(c / window)
        return rates


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="3,5,9")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--options", action="store_true")
    ap.add_argument("--probing", type=int, default=1)
    a = ap.parse_args()
    if a.options:
        print("| proxies | OPTIONS/s per SIP Server, every proxy probes "
              "| with dmq_probing %d |" % a.probing)
        print("|---|---|---|")
        for n in [int(x) for x in a.sizes.split(",")]:
            res = []
            for k in (0, a.probing):
                with tempfile.TemporaryDirectory(prefix="dmqopt") as d:
                    r = options_rate(n, k, Path(d))
                res.append("%.1f / %.1f" % tuple(r))
            print("| %d | %s | %s |" % (n, res[0], res[1]))
            sys.stdout.flush()
        return
    print("| proxies | switchovers | last proxy converged: median / max ms "
          "| any proxy: median ms | DMQ requests per switchover "
          "| state broadcasts per s (pool) |")
    print("|---|---|---|---|---|---|")
    for n in [int(x) for x in a.sizes.split(",")]:
        with tempfile.TemporaryDirectory(prefix="dmqconv") as d:
            worst, allv = run(n, a.rounds, Path(d))
        print("| %d | %d | %.1f / %.1f | %.1f | %d | %d |" % (
            n, a.rounds, statistics.median(worst), max(worst),
            statistics.median(allv), n - 1, n * (n - 1) * 1000 // 300))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
