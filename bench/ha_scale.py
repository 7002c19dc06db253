#!/usr/bin/python3
"""genesys_ha at scale (issue 10): per-call cost and reload time against the
size of the pool, with the reference etc/kamailio.cfg.

cost    callgrind instructions per call in the SIP receiver processes (the
        method of bench/relay_cost.py: the difference between a run of 250
        and a run of 50 calls, divided by 200) for pools of 1, 10, 100 and
        1000 pairs, two kinds of calls:
          endpoint   a phone calls through the proxy: the INVITE goes to the
                     serving pair (ha_from_sipserver() finds no member,
                     ha_select_serving()), ACK and BYE follow the Route
                     (ha_from_sipserver(), ha_route_in_dialog(): pair by
                     name, member by Request-URI host)
          sipserver  a SIP Server (the primary of a pair) calls a phone:
                     ha_from_sipserver() finds the member,
                     ha_select_by_uri() looks the Request-URI up, ACK and
                     BYE from the SIP Server as above
          endpoint_site  as endpoint, without serving_sipserver: the
                     INVITE goes through ha_select_site() over the pairs
                     of the proxy's site (SIPS_Bench alone in "east", the
                     fillers in "west")
        The pair used is the last of the file (the worst place for a
        linear scan); the others are fillers on other addresses.
reload  wall time of `kamcmd genesys_ha.reload` (unchanged file) for pools
        of 100, 1000 and 10,000 pairs, and the latency of another RPC
        (core.uptime) sent while a reload runs.

genesys_oos probing is off (oos_check 0): thousands of fillers are not
reachable, and probing is not what is measured.

calls   SIPp calls at 100 cps through a 10,000-pair pool while 20 reloads
        run, one per second: failed calls (none expected).

Usage: bench/ha_scale.py [--cost] [--reload] [--calls] [--quick] [--out FILE]
       bench/ha_scale.py --report RUN.json [--before OLD.json] --out PLOT.svg
       [--cost-sizes 1,10,100,1000] [--reload-sizes 100,1000,10000]
       [--calls-pairs 10000] [--rate 100]
(none of --cost/--reload/--calls: all three)
"""

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import benchlib

sys.path.insert(0, str(benchlib.HERE.parent / "test" / "system"))
import harness  # noqa: E402
import ha_util as hu  # noqa: E402


KINDS = {}


def set_net(net):
    """addresses of their own (same length as benchlib's 127.99.1.x): other
    benchmarks may run at the same time on this machine"""
    benchlib.ADDR_KAMAILIO = net + ".101"
    benchlib.ADDR_UAS = net + ".102"
    benchlib.ADDR_UAC = net + ".103"
    benchlib.ADDR_SILENT = net + ".104"
    # (primary of SIPS_Bench, UAS address, UAC address, sites)
    KINDS["endpoint"] = (benchlib.ADDR_UAS, benchlib.ADDR_UAS,
                         benchlib.ADDR_UAC, False)
    KINDS["sipserver"] = (benchlib.ADDR_UAC, benchlib.ADDR_UAS,
                          benchlib.ADDR_UAC, False)
    KINDS["endpoint_site"] = (benchlib.ADDR_UAS, benchlib.ADDR_UAS,
                              benchlib.ADDR_UAC, True)


set_net("127.99.2")


def filler(i, k):
    """member k of filler pair i: an address of its own (127.98.x.y)"""
    return "sip:127.98.%d.%d:%d" % (i // 250, i % 250 + 1, 5060 + k)


def pool_text(n, primary, backup=None, sites=False):
    """n pairs, SIPS_Bench last; with sites, SIPS_Bench alone in "east",
    the fillers in "west" """
    backup = backup or "sip:%s:5060" % benchlib.ADDR_SILENT
    pairs = [("SIPS_%d" % i, filler(i, 0), filler(i, 1),
              "west" if sites else None) for i in range(n - 1)]
    pairs.append(("SIPS_Bench", primary, backup, "east" if sites else None))
    return hu.pool_xml(pairs)


def cfg_text(npairs):
    return hu.reference_cfg({"oos_check": 0, "max_targets": 2 * npairs + 16})


def defines(pool_path, sites=False):
    """SIPS_Bench serving; with sites, no serving pair: ha_select_site()
    over the pairs of the proxy's site (east)"""
    if sites:
        return {"POOL_FILE": '"%s"' % pool_path, "GEO_LOCATION": '"east"'}
    return {"POOL_FILE": '"%s"' % pool_path,
            "SERVING_SIPSERVER": '"SIPS_Bench"'}


def cost(tmp, sizes, quick, kinds=None):
    calls = (20, 70) if quick else (50, 250)
    res = {}
    for kind, (primary, uas, uac, sites) in KINDS.items():
        if kinds and kind not in kinds:
            continue
        for n in sizes:
            d = Path(tmp) / ("cost-%s-%d" % (kind, n))
            d.mkdir(parents=True)
            pool = d / "pool.xml"
            pool.write_text(
                pool_text(n, "sip:%s:5060" % primary, sites=sites))
            ir = benchlib.instructions_per_call(
                d, cfg_text(n), defines(pool, sites), calls=calls,
                uas_address=uas, uac_address=uac)
            res[(kind, n)] = ir
            print("cost %-9s %5d pairs: %10.0f instructions per call"
                  % (kind, n, ir), flush=True)
    return res


def timed_rpc(k, *args):
    t0 = time.monotonic()
    out = k.rpc(*args, timeout=120)
    return time.monotonic() - t0, out


def reload_times(tmp, sizes, runs):
    res = {}
    for n in sizes:
        d = Path(tmp) / ("reload-%d" % n)
        pool = d / "pool.xml"
        d.mkdir(parents=True)
        pool.write_text(pool_text(n, "sip:%s:5060" % benchlib.ADDR_UAS))
        k = harness.Kamailio(d / "k", cfg_text=cfg_text(n),
                             defines=defines(pool), mem_debug=False,
                             extra_args=benchlib.MEM_ARGS + ["-m", "512"],
                             address=benchlib.ADDR_KAMAILIO)
        k.start(timeout=300)
        try:
            base = [timed_rpc(k, "core.uptime")[0] for _ in range(5)]
            times = []
            for _ in range(runs):
                dt, out = timed_rpc(k, "genesys_ha.reload")
                if "loaded" not in out:
                    raise RuntimeError("reload failed: %s" % out)
                times.append(dt)
            # another RPC while a reload runs (sent 10 ms after it)
            during = []
            for _ in range(runs):
                t = threading.Thread(target=timed_rpc,
                                     args=(k, "genesys_ha.reload"))
                t.start()
                time.sleep(0.01)
                during.append(timed_rpc(k, "core.uptime")[0])
                t.join()
        finally:
            k.stop(check=False)
        res[n] = {"reload": statistics.median(times), "max": max(times),
                  "rpc_base": statistics.median(base),
                  "rpc_during": max(during)}
        print("reload %6d pairs: median %.3f s (max %.3f s); core.uptime "
              "%.0f ms alone, up to %.0f ms during a reload"
              % (n, res[n]["reload"], res[n]["max"], res[n]["rpc_base"] * 1e3,
                 res[n]["rpc_during"] * 1e3), flush=True)
    return res


def calls_during_reloads(tmp, n, reloads, rate):
    """SIPp calls at `rate` through the proxy while `reloads` reloads of an
    unchanged n-pair pool run one per second; returns a dict"""
    d = Path(tmp) / ("calls-%d" % n)
    pool = d / "pool.xml"
    d.mkdir(parents=True)
    pool.write_text(pool_text(n, "sip:%s:5060" % benchlib.ADDR_UAS))
    k = harness.Kamailio(d / "k", cfg_text=cfg_text(n), defines=defines(pool),
                         mem_debug=False,
                         extra_args=benchlib.MEM_ARGS + ["-m", "512"],
                         address=benchlib.ADDR_KAMAILIO)
    k.start(timeout=300)
    calls = rate * (reloads + 4)
    times, outs = [], []

    def reloader():
        time.sleep(2)
        for _ in range(reloads):
            t0 = time.monotonic()
            out = k.rpc("genesys_ha.reload", timeout=60)
            times.append(time.monotonic() - t0)
            outs.append(out)
            if "loaded" not in out:
                raise RuntimeError("reload failed: %s" % out)
            time.sleep(max(0, 1 - (time.monotonic() - t0)))

    t = threading.Thread(target=reloader)
    try:
        t.start()
        r, _ = benchlib.run_calls(d, k, calls, rate,
                                  uas_address=benchlib.ADDR_UAS,
                                  uac_address=benchlib.ADDR_UAC)
        t.join()
    finally:
        k.stop(check=False)
    res = {"pairs": n, "calls": calls, "ok": r.successful, "failed": r.failed,
           "reloads": len(times), "reload_max": max(times) if times else 0,
           "last": outs[-1].strip() if outs else ""}
    print("calls during reloads: %(pairs)d pairs, %(reloads)d reloads "
          "(max %(reload_max).3f s), %(calls)d calls: %(ok)d ok, "
          "%(failed)d failed; last reload: %(last)s" % res, flush=True)
    return res


def table(costs, reloads):
    lines = []
    if costs:
        sizes = sorted(set(n for _, n in costs))
        lines += ["| calls | " + " | ".join("%d pairs" % n for n in sizes)
                  + " | 1000 vs 1 |",
                  "|---|" + "---|" * (len(sizes) + 1)]
        for kind in KINDS:
            row = [costs.get((kind, n)) for n in sizes]
            rel = ""
            if costs.get((kind, 1)) and costs.get((kind, sizes[-1])):
                rel = "%+.2f %%" % ((costs[(kind, sizes[-1])]
                                     / costs[(kind, 1)] - 1) * 100)
            lines.append("| %s | %s | %s |" % (
                kind, " | ".join("%.0f" % v if v else "-" for v in row), rel))
        lines.append("")
    if reloads:
        lines += ["| pairs | reload (median) | reload (max) | core.uptime "
                  "alone | core.uptime during a reload (max) |",
                  "|---|---|---|---|---|"]
        for n, r in sorted(reloads.items()):
            lines.append("| %d | %.3f s | %.3f s | %.0f ms | %.0f ms |"
                         % (n, r["reload"], r["max"], r["rpc_base"] * 1e3,
                            r["rpc_during"] * 1e3))
    return "\n".join(lines)


def _svg_panel(x0, title, xs_label, ylabel, series, xs, ymin, ymax, fmt):
    """one panel of the plot: log x axis over xs, lines of (name, color,
    {x: y})"""
    import math
    w, h, ml, mr, mt, mb = 420, 260, 58, 12, 40, 38
    lx0, lx1 = math.log10(xs[0]), math.log10(xs[-1])

    def px(x):
        return x0 + ml + (math.log10(x) - lx0) / (lx1 - lx0 or 1) * (w - ml - mr)

    def py(y):
        return h - mb - (y - ymin) / (ymax - ymin or 1) * (h - mt - mb)
    out = ['<text x="%.1f" y="18" font-size="13" font-weight="bold">%s</text>'
           % (x0 + ml, title),
           '<rect x="%.1f" y="%d" width="%d" height="%d" fill="none" '
           'stroke="#999"/>' % (x0 + ml, mt, w - ml - mr, h - mt - mb)]
    for x in xs:
        out.append('<text x="%.1f" y="%d" font-size="11" text-anchor="middle">'
                   '%d</text>' % (px(x), h - mb + 15, x))
    out.append('<text x="%.1f" y="%d" font-size="11" text-anchor="middle">%s'
               '</text>' % (x0 + ml + (w - ml - mr) / 2, h - 6, xs_label))
    for i in range(5):
        y = ymin + (ymax - ymin) * i / 4
        out.append('<text x="%.1f" y="%.1f" font-size="10" text-anchor="end">'
                   '%s</text>' % (x0 + ml - 4, py(y) + 3, fmt % y))
    out.append('<text x="%.1f" y="%d" font-size="11">%s</text>'
               % (x0 + ml + 4, mt - 6, ylabel))
    for n, (name, color, pts) in enumerate(series):
        xy = [(px(x), py(pts[x])) for x in xs if x in pts]
        dash = ' stroke-dasharray="5,4"' if color.endswith(" dashed") else ""
        color = color.split()[0]
        out.append('<polyline fill="none" stroke="%s" stroke-width="2"%s '
                   'points="%s"/>' % (color, dash, " ".join("%.1f,%.1f" % p
                                                            for p in xy)))
        for p in xy:
            out.append('<circle cx="%.1f" cy="%.1f" r="3" fill="%s"/>'
                       % (p[0], p[1], color))
        out.append('<text x="%.1f" y="%d" font-size="11" fill="%s">%s</text>'
                   % (x0 + ml + 8, mt + 16 + 14 * n, color, name))
    return out


def svg(costs, reloads, before=None):
    """cost per call and reload time against the pool size, side by side;
    with `before` ((costs, reloads) of another run): both, that one dashed,
    costs in instructions instead of % of 1 pair"""
    parts, x0 = [], 0
    bc, br = before or ({}, {})
    if costs:
        sizes = sorted(set(n for _, n in list(costs) + list(bc)))
        series = []
        for kind, color in (("endpoint", "#1f6fd1"), ("sipserver", "#d62728"),
                            ("endpoint_site", "#2ca02c")):
            base = costs.get((kind, sizes[0]))
            if before:
                series.append(("%s calls" % kind, color, dict(
                    (n, v / 1000.0) for (k, n), v in costs.items()
                    if k == kind)))
                series.append(("%s calls, before" % kind, color + " dashed",
                               dict((n, v / 1000.0) for (k, n), v in bc.items()
                                    if k == kind)))
            elif base:
                series.append(("%s calls" % kind, color, dict(
                    (n, (costs[(kind, n)] / base - 1) * 100)
                    for n in sizes if (kind, n) in costs)))
        if before:
            top = max(list(costs.values()) + list(bc.values())) / 1000.0
            parts += _svg_panel(x0, "instructions per call", "pairs in the "
                                "pool", "thousands", series, sizes, 0,
                                top * 1.1, "%.0f")
        else:
            parts += _svg_panel(x0, "instructions per call vs 1 pair",
                                "pairs in the pool", "%", series, sizes, -1, 1,
                                "%+.1f %%")
        x0 += 430
    if reloads:
        sizes = sorted(set(reloads) | set(br))
        top = max([0.5] + [r["reload"] for r in reloads.values()]
                  + [r["reload"] for r in br.values()])
        series = [("reload (median)", "#1f6fd1", dict(
            (n, r["reload"]) for n, r in reloads.items())),
            ("core.uptime during a reload", "#ff8c00", dict(
                (n, r["rpc_during"]) for n, r in reloads.items()))]
        if before:
            series.append(("reload, before", "#1f6fd1 dashed", dict(
                (n, r["reload"]) for n, r in br.items())))
        parts += _svg_panel(
            x0, "genesys_ha.reload (unchanged file)", "pairs in the pool",
            "seconds", series, sizes, 0, top * 1.1, "%.2f")
        x0 += 430
    return ('<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="260" '
            'font-family="sans-serif">\n%s\n</svg>\n'
            % (max(x0, 430), "\n".join(parts)))


def load_json(path):
    """(costs, reloads, calls) of a --out JSON file"""
    d = json.loads(Path(path).read_text())
    return (dict(((c["kind"], c["pairs"]), c["instructions"])
                 for c in d["cost"]),
            dict((r["pairs"], r) for r in d["reload"]),
            d.get("calls_during_reloads"))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cost", action="store_true")
    ap.add_argument("--reload", action="store_true")
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--cost-sizes", default="1,10,100,1000")
    ap.add_argument("--kinds", help="calls measured (default all): "
                    "endpoint,sipserver,endpoint_site")
    ap.add_argument("--reload-sizes", default="100,1000,10000")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--calls", action="store_true",
                    help="calls at --rate during 20 reloads of --calls-pairs")
    ap.add_argument("--calls-pairs", type=int, default=10000)
    ap.add_argument("--rate", type=int, default=100)
    ap.add_argument("--net", default="127.99.2",
                    help="first three bytes of the fixed addresses")
    ap.add_argument("--out")
    ap.add_argument("--report", help="redraw --out's SVG from this JSON "
                    "(no run)")
    ap.add_argument("--before", help="with --report: another run's JSON, "
                    "drawn dashed")
    args = ap.parse_args()
    set_net(args.net)
    if args.report:
        costs, reloads, _ = load_json(args.report)
        before = load_json(args.before)[:2] if args.before else None
        Path(args.out).write_text(svg(costs, reloads, before))
        return 0
    both = not args.cost and not args.reload and not args.calls
    costs, reloads, during = {}, {}, None
    with tempfile.TemporaryDirectory(prefix="bench-ha-scale-") as tmp:
        if args.calls or both:
            during = calls_during_reloads(tmp, args.calls_pairs, 20, args.rate)
        if args.reload or both:
            reloads = reload_times(
                tmp, [int(x) for x in args.reload_sizes.split(",")], args.runs)
        if args.cost or both:
            costs = cost(tmp, [int(x) for x in args.cost_sizes.split(",")],
                         args.quick,
                         args.kinds.split(",") if args.kinds else None)
    text = table(costs, reloads)
    if during:
        text += ("\n\n%(calls)d calls at %(rate)d cps through %(pairs)d pairs "
                 "during %(reloads)d reloads (longest %(reload_max).3f s): "
                 "%(ok)d succeeded, %(failed)d failed\n"
                 % dict(during, rate=args.rate))
    print(text)
    if args.out:
        out = Path(args.out)
        out.write_text(text + "\n")
        out.with_suffix(".json").write_text(json.dumps({
            "cost": [{"kind": k, "pairs": n, "instructions": v}
                     for (k, n), v in sorted(costs.items())],
            "reload": [dict(r, pairs=n) for n, r in sorted(reloads.items())],
            "calls_during_reloads": during}, indent=1) + "\n")
        if costs or reloads:
            out.with_suffix(".svg").write_text(svg(costs, reloads))
    return 0


if __name__ == "__main__":
    sys.exit(main())
