#!/usr/bin/python3
"""Soak: the reference config under steady load for a long time (issue 14
point 7).

One kamailio (etc/kamailio.cfg as shipped: POOL_FILE with one pair,
WITH_TLS, 4 children) between
  - a SIPp UAC placing RATE calls/s (test/sipp/ha_phone_call.xml: INVITE,
    200, ACK, HOLD s, BYE along the route set) for DURATION s;
  - a SIP Server pair, both members answering (bench/soak/member.py: the
    pair shares call state, so a BYE reaching the other member after a
    switchover gets 200), also the registrar;
  - PHONES TLS phones (test/system/tls_ua.StreamUA, one connection each)
    re-registering every REG_INTERVAL s over their connection
    (genesys_tlssticky rewrites their Contacts, commits the binding on the
    200);
  - an operator switchover (kamcmd genesys_ha.switchover) every
    SWITCHOVER_EVERY s and a pool reload (kamcmd genesys_ha.reload) every
    RELOAD_EVERY s.
Every SAMPLE s: kamailio's shm in use (core.shmmem real_used), the pkg in
use of every process (pkg.stats), and the RSS of every kamailio process
(/proc: VmRSS, and RssAnon, the private part); the transactions alive
(tm.stats current) and, with --mem-debug, tm's cells and request clones in
shm (kex mod.mem_statsx: how many, how many bytes).  Slopes are least-squares
fits over the samples after the warm-up (WARMUP s: connections, tm's and
the allocators' first use), in KB per minute.

Pass: no failed call, no failed registration, no failed RPC, no ERROR line
from our modules, nothing the test harness fails a log on (crash, BUG,
CRITICAL, AddressSanitizer...), pkg slope under --max-slope KB/min, tm
cells alive growing less than --max-cell-slope per minute, no more than
--max-kept KB of shm kept once the load is over.  The shm slope under load
is reported, not judged: with q_malloc (Kamailio's default allocator) the
same transactions take bigger fragments as the run goes on
(docs/robustness.md; bench/soak/qm_walk.py shows the fragments).

With --asan DIR the modules of DIR (make asan-modules) are loaded with the
ASan and UBSan runtimes preloaded (test/system/test_sanitize.py).

Usage: bench/soak/soak.py [--duration 300] [--rate 100] [--hold 2]
         [--phones 200] [--reg-interval 30] [--switchover-every 60]
         [--reload-every 10] [--out build/soak] [--asan build/asan]
Writes OUT.md (figures) and OUT.json (figures and every sample).
"""

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TOP = HERE.parents[1]
sys.path.insert(0, str(TOP / "test" / "system"))

import harness  # noqa: E402
import ha_util  # noqa: E402
import tls_ua  # noqa: E402

PY = "/usr/bin/python3"
SECRET = "soak-pool-secret-0123456789abcdef"
# an ERROR line logged by one of our modules (Kamailio's log format:
# "ERROR: genesys_ha [gha_route.c:123]: ...")
OUR_ERROR = re.compile(r"\bERROR: (genesys_\w+) ")


def slope(samples, key, t0):
    """least-squares slope of samples[key] over time, per minute, for the
    samples at t >= t0"""
    pts = [(s["t"], s[key]) for s in samples if s["t"] >= t0
           and s.get(key) is not None]
    n = len(pts)
    if n < 3:
        return None
    mt = sum(t for t, _ in pts) / n
    mv = sum(v for _, v in pts) / n
    var = sum((t - mt) ** 2 for t, _ in pts)
    if var == 0:
        return None
    return sum((t - mt) * (v - mv) for t, v in pts) / var * 60.0


def pids_of(k):
    """every process of the kamailio (its own process group)"""
    out = []
    for p in Path("/proc").iterdir():
        if not p.name.isdigit():
            continue
        try:
            if os.getpgid(int(p.name)) == k.proc.pid:
                out.append(int(p.name))
        except OSError:
            pass
    return out


def rss(pids):
    """(sum of VmRSS, sum of RssAnon), bytes"""
    tot = anon = 0
    for pid in pids:
        try:
            st = Path("/proc/%d/status" % pid).read_text()
        except OSError:
            continue
        m = re.search(r"^VmRSS:\s+(\d+) kB", st, re.M)
        a = re.search(r"^RssAnon:\s+(\d+) kB", st, re.M)
        tot += int(m.group(1)) * 1024 if m else 0
        anon += int(a.group(1)) * 1024 if a else 0
    return tot, anon


def shm_used(k):
    """(real_used, used): with and without the allocator's overhead"""
    shm = k.rpc_json("core.shmmem")
    return shm["real_used"], shm["used"]


def pkg_used(k):
    """sum of the pkg memory in use over every process (pkg.stats)"""
    used = [p["real_used"] for p in k.rpc_json("pkg.stats") if "real_used" in p]
    return sum(used) if used else None


MODSTATS_MODULES = ("core", "tm", "tls", "sl", "tmx", "rr", "kex", "corex",
                    "genesys_oos", "genesys_ha", "genesys_tlssticky")


def modstats(k):
    """{module: {"function(line)": shm bytes}} (kex mod.stats; with
    Kamailio's memory debugging only)"""
    res = {}
    # one module at a time: "all" does not fit in one ctl reply
    for mod in MODSTATS_MODULES:
        try:
            out = k.rpc_json("mod.stats", mod, "shm")
        except harness.RpcError:
            continue
        # ["Module: <name>", {"function(line)": bytes}, ...]
        for head, fns in zip(out, out[1:]):
            if isinstance(head, str) and head.startswith("Module: ") \
                    and isinstance(fns, dict):
                res[head.split(": ", 1)[1]] = fns
    return res


def modstats_growth(a, b, min_bytes=4096):
    """what grew between two modstats() by more than min_bytes"""
    out = {}
    for mod, fns in b.items():
        for fn, v in fns.items():
            d = v - a.get(mod, {}).get(fn, 0)
            if d >= min_bytes and fn != "Total":
                out["%s %s" % (mod, fn)] = d
    return dict(sorted(out.items(), key=lambda kv: -kv[1]))


def tm_current(k):
    """transactions alive (tm.stats current)"""
    try:
        return k.rpc_json("tm.stats")["current"]
    except harness.HarnessError:
        return None


def tm_cells(k):
    """(cells, clones, cells' bytes, clones' bytes): the shm fragments in
    use from tm's build_cell() (one per transaction tm holds, in its hash
    table or not) and the core's sip_msg_shm_clone() (their requests), and
    their bytes (kex mod.mem_statsx; with Kamailio's memory debugging
    only)"""
    out = k.rpc_raw("mod.mem_statsx", "tm", "shm").stdout
    out += k.rpc_raw("mod.mem_statsx", "core", "shm").stdout
    cells = clones = cells_b = clones_b = 0
    for fn, b, n in re.findall(r"^\s*(\w+)\(\d+\): (\d+) \((\d+)\)$",
                               out, re.M):
        if fn == "build_cell":
            cells += int(n)
            cells_b += int(b)
        elif fn == "sip_msg_shm_clone":
            clones += int(n)
            clones_b += int(b)
    return cells, clones, cells_b, clones_b


def asan_mapped(pids, asan_dir):
    """every process maps libasan and our modules from asan_dir"""
    for pid in pids:
        try:
            maps = Path("/proc/%d/maps" % pid).read_text()
        except OSError:
            continue
        if "libasan.so" not in maps:
            return False
        for m in ("genesys_oos", "genesys_ha", "genesys_tlssticky"):
            if "%s/%s/%s.so" % (asan_dir, m, m) not in maps:
                return False
    return True


class Phones:
    """n TLS phones, each on its own connection, re-registering every
    interval s; counts registrations and failures"""

    def __init__(self, k, n, interval, threads=4, tls=True):
        self.k = k
        self.interval = interval
        self.ok = 0
        self.failed = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        addrs = [harness.next_address() for _ in range((n + 49) // 50)]
        ctx = tls_ua.client_context()
        self.phones = [tls_ua.StreamUA(addrs[i // 50], k.address,
                                       5061 if tls else 5060, tls=tls,
                                       ctx=ctx, user="p%04d" % i)
                       for i in range(n)]
        self.groups = [self.phones[i::threads] for i in range(threads)]
        self.threads = [threading.Thread(target=self._run, args=(g,),
                                         daemon=True) for g in self.groups]

    def register(self, ph):
        try:
            call_id, _ = ph.register(self.k.address,
                                     expires=int(self.interval * 2 + 10))
            r = ph.recv(5, want=lambda m: m.is_reply and m.status >= 200
                        and m.hdr("Call-ID") == call_id)
            good = r.status == 200
            err = None if good else r.text.split("\r\n", 1)[0]
        except (TimeoutError, ConnectionError, OSError) as e:
            good, err = False, str(e)
        with self.lock:
            if good:
                self.ok += 1
            else:
                self.failed.append((time.time(), ph.user, err))
        return good

    def _run(self, group):
        # spread the group's registrations over the interval
        n = len(group)
        nxt = [time.monotonic() + self.interval * i / max(n, 1)
               for i in range(n)]
        while not self.stop.is_set():
            now = time.monotonic()
            i = min(range(n), key=lambda j: nxt[j])
            if nxt[i] > now:
                self.stop.wait(min(nxt[i] - now, 0.5))
                continue
            ph = group[i]
            if ph.closed:
                nxt[i] = float("inf")
                continue
            self.register(ph)
            nxt[i] = max(nxt[i] + self.interval, now)

    def start(self):
        # every phone registers once before the load starts
        for ph in self.phones:
            if not self.register(ph):
                raise RuntimeError("phone %s: first registration failed: %s"
                                   % (ph.user, self.failed[-1]))
        for t in self.threads:
            t.start()

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(timeout=10)
        for ph in self.phones:
            ph.close()


def start_member(workdir, name, address):
    stats = workdir / ("%s.json" % name)
    p = subprocess.Popen([PY, str(HERE / "member.py"), "--address", address,
                          "--stats", str(stats)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    line = p.stdout.readline()
    if "ready" not in line:
        p.kill()
        raise RuntimeError("member %s did not start: %s" % (name, line))
    p.stats_path = stats
    return p


def stop_member(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()
    try:
        return json.loads(p.stats_path.read_text())
    except (OSError, ValueError):
        return {}


def run(duration=300, rate=100, hold=2.0, phones=200, reg_interval=30,
        switchover_every=60, reload_every=10, sample=5, warmup=None,
        children=4, asan=None, mem_debug=False, workdir=None, log=print,
        keep_log=None, shm_mb=64, phone_tls=True, sticky_tcp=True,
        shm_manager=None, mem_join=None):
    """One soak run; returns the result dict (see main for the figures)."""
    workdir = Path(workdir or tempfile.mkdtemp(prefix="soak-"))
    workdir.mkdir(parents=True, exist_ok=True)
    warmup = warmup if warmup is not None else min(60.0, duration * 0.2)
    certs = tls_ua.Certs(workdir / "certs")
    pri_addr, bak_addr = harness.next_address(), harness.next_address()
    members = {}
    k = sipp = ph = None
    res = {"shm_mb": shm_mb, "shm_manager": shm_manager or (
               "qm" if mem_debug else "default"),
           "mem_join": mem_join,
           "duration": duration, "rate": rate, "hold": hold, "phones": phones,
           "reg_interval": reg_interval, "switchover_every": switchover_every,
           "reload_every": reload_every, "asan": bool(asan),
           "rpc_failed": [], "switchovers": 0, "reloads": 0, "samples": []}
    try:
        members["primary"] = start_member(workdir, "primary", pri_addr)
        members["backup"] = start_member(workdir, "backup", bak_addr)
        pool = ha_util.write_pool(workdir / "pool.xml", [
            ("SIPS_A", "sip:%s:5060" % pri_addr, "sip:%s:5060" % bak_addr,
             None)])
        tls_cfg = (TOP / "etc" / "tls.cfg").read_text()
        tls_cfg = tls_cfg.replace("/etc/kamailio/tls/proxy.key",
                                  str(certs.server_key))
        tls_cfg = tls_cfg.replace("/etc/kamailio/tls/proxy.pem",
                                  str(certs.server))
        tls_cfg = tls_cfg.replace("/etc/kamailio/tls/ca.pem", str(certs.ca))
        (workdir / "tls.cfg").write_text(tls_cfg)
        addr = harness.next_address()
        cfg = harness.REFERENCE_CFG.read_text()
        if not sticky_tcp:
            # TCP phones not made sticky (a diagnostic: genesys_tlssticky
            # out of the TCP phones' path)
            cfg = cfg.replace('modparam("genesys_tlssticky", "tcp", 1)',
                              'modparam("genesys_tlssticky", "tcp", 0)')
        k = harness.Kamailio(
            workdir / "kamailio", address=addr, mem_debug=mem_debug,
            asan=asan, extra_args=["-m", str(shm_mb)] + (
                ["-x", shm_manager] if shm_manager else []), cfg_text=cfg,
            defines={
                "POOL_FILE": '"%s"' % pool, "WITH_TLS": None,
                "LISTEN_TLS": "tls:%s:5061" % addr,
                "TLS_CFG": '"%s"' % (workdir / "tls.cfg"),
                "STICKY_SECRET": '"%s"' % SECRET,
                "CHILDREN": str(children)})
        k.start(timeout=30)
        if mem_join is not None:
            # the core's mem_join (default 1: q_malloc joins the fragments
            # freed next to each other), before any load
            k.rpc("cfg.set_now_int", "core", "mem_join", str(mem_join))
        ha_util.wait_pool(k, lambda p: p["SIPS_A"]["state"] == "up"
                          and p["SIPS_A"]["members"]["backup"]["state"]
                          == "active", timeout=20, what="both members active")
        if asan:
            res["asan_mapped"] = asan_mapped(pids_of(k), str(asan))
        log("kamailio %s up, %d phones registering" % (addr, phones))
        if phones > 0:
            ph = Phones(k, phones, reg_interval, tls=phone_tls)
            ph.start()
        calls = int(rate * duration)
        sipp = harness.Sipp(workdir, "ha_phone_call.xml", "uac",
                            remote="%s:5060" % addr, calls=calls,
                            extra_args=["-r", str(rate), "-d",
                                        str(int(hold * 1000))],
                            service="2000", timeout=int(duration + 120),
                            trace=False)
        # the first registrations' transactions end (tm's wait timer: 5 s)
        time.sleep(6)
        res["tm_baseline"] = tm_current(k)
        res["shm_baseline"] = shm_used(k)
        if mem_debug:
            ms0 = modstats(k)
        t0 = time.monotonic()
        sipp.start()
        nxt_sample = nxt_reload = nxt_sw = t0
        nxt_reload += reload_every
        nxt_sw += switchover_every
        while sipp.proc.poll() is None:
            now = time.monotonic()
            if now > t0 + duration + 120:
                break
            if now >= nxt_sw:
                try:
                    k.rpc_json("genesys_ha.switchover", "SIPS_A")
                    res["switchovers"] += 1
                except harness.HarnessError as e:
                    res["rpc_failed"].append(("switchover", str(e)))
                nxt_sw += switchover_every
            if now >= nxt_reload:
                try:
                    k.rpc_json("genesys_ha.reload")
                    res["reloads"] += 1
                except harness.HarnessError as e:
                    res["rpc_failed"].append(("reload", str(e)))
                nxt_reload += reload_every
            if now >= nxt_sample:
                pids = pids_of(k)
                tot, anon = rss(pids)
                shm, shm_net = shm_used(k)
                s = {"t": round(now - t0, 1), "shm": shm, "shm_used": shm_net,
                     "tm": tm_current(k),
                     "pkg": pkg_used(k), "rss": tot, "rss_anon": anon,
                     "procs": len(pids)}
                if mem_debug:
                    (s["cells"], s["clones"], s["cells_b"],
                     s["clones_b"]) = tm_cells(k)
                res["samples"].append(s)
                if mem_debug and s["t"] >= warmup and "_ms_w" not in res:
                    res["_ms_w"] = modstats(k)
                if mem_debug and s["t"] >= duration - 2 * sample and \
                        "_ms_w" in res and "modstats_load_growth" not in res:
                    res["modstats_load_growth"] = modstats_growth(
                        res.pop("_ms_w"), modstats(k))
                nxt_sample += sample
                if len(res["samples"]) % 12 == 1:
                    log("t=%4.0fs shm %.0f KB pkg %.0f KB rss %.0f KB"
                        " transactions %s cells %s"
                        % (s["t"], (s["shm"] or 0) / 1024,
                           (s["pkg"] or 0) / 1024, tot / 1024, s["tm"],
                           s.get("cells", "-")))
            time.sleep(max(0.0, min(nxt_sample, nxt_reload, nxt_sw)
                           - time.monotonic()))
        r = sipp.wait(timeout=60)
        # drained: the load is over and tm's timers have ended its
        # transactions (the phones are still connected): what is left above
        # the baseline stays for good
        t1 = time.monotonic()
        while time.monotonic() < t1 + 60 and \
                (tm_current(k) or 0) > (res["tm_baseline"] or 0) + 20:
            time.sleep(1)
        time.sleep(6)
        res["tm_left"] = tm_current(k)
        res["shm_drained"] = shm_used(k)
        res["shm_kept_kb"] = round((res["shm_drained"][1]
                                    - res["shm_baseline"][1]) / 1024, 1)
        if mem_debug:
            res["modstats_kept"] = modstats_growth(ms0, modstats(k), 1024)
        res["calls"] = calls
        res["calls_ok"] = r.successful
        res["calls_failed"] = r.failed
        res["sipp_rc"] = r.rc
        res["wall"] = round(time.monotonic() - t0, 1)
        if ph is not None:
            ph.close()
            res["registrations"] = ph.ok
            res["registrations_failed"] = ph.failed[:20]
            res["registrations_failed_n"] = len(ph.failed)
        res["bindings"] = k.rpc_json("genesys_tlssticky.stats")
        ph = None
        for key in ("shm", "shm_used", "pkg", "rss", "rss_anon"):
            v = slope(res["samples"], key, warmup)
            res["slope_%s_kb_min" % key] = None if v is None else round(
                v / 1024, 2)
        post = [s for s in res["samples"] if s["t"] >= warmup]
        for key in ("shm", "shm_used", "pkg", "rss", "rss_anon"):
            vals = [s[key] for s in post if s.get(key) is not None]
            if vals:
                res["%s_first_kb" % key] = round(vals[0] / 1024)
                res["%s_last_kb" % key] = round(vals[-1] / 1024)
                res["%s_max_kb" % key] = round(max(vals) / 1024)
        tms = [x["tm"] for x in post if x.get("tm") is not None]
        if tms:
            res["tm_first"], res["tm_last"], res["tm_max"] = \
                tms[0], tms[-1], max(tms)
        # transactions per minute, and tm's shm in whole cells and request
        # clones: their number (do more transactions live?) and their bytes
        # per fragment (does the allocator hand out bigger fragments?)
        # (the count is level once the first calls' transactions end: a
        # call's length plus tm's 5 s wait, however short the warm-up)
        for key in ("tm", "cells", "clones"):
            v = slope(res["samples"], key, max(warmup, hold + 10))
            res["slope_%s_min" % key] = None if v is None else round(v, 2)
        for key in ("cells", "clones"):
            pts = [x for x in post if x.get(key)]
            if pts:
                res["%s_first" % key], res["%s_last" % key] = \
                    pts[0][key], pts[-1][key]
                res["%s_per_first" % key], res["%s_per_last" % key] = [
                    round(x[key + "_b"] / x[key]) for x in (pts[0], pts[-1])]
                v = slope(res["samples"], key + "_b", warmup)
                res["slope_%s_b_kb_min" % key] = None if v is None else \
                    round(v / 1024, 2)
        text = k.log_text()
        res["our_errors"] = [ln for ln in text.splitlines()
                             if OUR_ERROR.search(ln)][:20]
        res["log_failures"] = k.failures()[:20]
    finally:
        if ph is not None:
            ph.close()
        if sipp is not None:
            sipp.kill()
        if k is not None and k.proc is not None:
            try:
                k.stop(check=True)
            except harness.HarnessError as e:
                res.setdefault("log_failures", []).append(str(e)[:2000])
        for name, p in members.items():
            res["member_%s" % name] = stop_member(p)
        if k is not None and keep_log:
            shutil.copy(k.log, keep_log)
    return res


def verdict(res, max_slope, max_kept=512, max_cell_slope=5.0):
    bad = []
    if res.get("calls_failed") or res.get("calls_ok") != res.get("calls"):
        bad.append("calls: %s of %s ok, %s failed" % (
            res.get("calls_ok"), res.get("calls"), res.get("calls_failed")))
    if res.get("registrations_failed_n"):
        bad.append("%d registrations failed" % res["registrations_failed_n"])
    if res["rpc_failed"]:
        bad.append("RPC failures: %s" % res["rpc_failed"][:3])
    if res.get("our_errors"):
        bad.append("ERROR lines from our modules: %s" % res["our_errors"][:3])
    if res.get("log_failures"):
        bad.append("log failures: %s" % res["log_failures"][:3])
    if res.get("asan") and not res.get("asan_mapped"):
        bad.append("ASan runtime or modules not mapped in every process")
    v = res.get("slope_pkg_kb_min")
    if v is not None and v > max_slope:
        bad.append("pkg grows %.1f KB/min under load" % v)
    # a transaction created or kept too many (tm cells leaking) shows as
    # more cells alive under steady load (--mem-debug); bigger fragments
    # per cell are q_malloc's (docs/robustness.md). Judged with the other
    # slopes (max_slope infinite: a run too short for slopes)
    v = res.get("slope_cells_min")
    if v is not None and math.isfinite(max_slope) and v > max_cell_slope:
        bad.append("tm cells alive grow by %.1f/min under load" % v)
    # shm under load holds the transactions in flight, which follow the
    # machine's load: reported, judged by what stays once the load is over
    # and by what our modules hold (mod.stats, --mem-debug)
    ours = {f: b for f, b in (res.get("modstats_load_growth") or {}).items()
            if f.startswith("genesys_")}
    if ours:
        bad.append("shm of our modules grows under load: %s" % ours)
    if res.get("shm_kept_kb") is not None and res["shm_kept_kb"] > max_kept:
        bad.append("%.0f KB of shm kept after the load" % res["shm_kept_kb"])
    return bad


def _kb(pair):
    return round(pair[1] / 1024) if pair else "-"


def report_md(res, bad, argv):
    def kb(key):
        return res.get(key, "-")
    lines = [
        "# Soak: %s" % ("PASS" if not bad else "FAIL"), "",
        "`%s`" % " ".join(argv), "",
        "| | |", "|---|---|",
        "| duration | %s s (wall %s s) |" % (res["duration"], res.get("wall")),
        "| calls | %s placed, %s ok, %s failed (%s calls/s, %s s each) |"
        % (res.get("calls"), res.get("calls_ok"), res.get("calls_failed"),
           res["rate"], res["hold"]),
        "| TLS phones | %s, %s registrations, %s failed |"
        % (res["phones"], res.get("registrations"),
           res.get("registrations_failed_n")),
        "| switchovers | %s (every %s s) |" % (res["switchovers"],
                                               res["switchover_every"]),
        "| reloads | %s (every %s s) |" % (res["reloads"],
                                           res["reload_every"]),
        "| RPC failures | %d |" % len(res["rpc_failed"]),
        "| ERROR lines from our modules | %d |" % len(res.get("our_errors",
                                                              [])),
        "| shm in use (KB): first / last / max after warm-up | %s / %s / %s |"
        % (kb("shm_first_kb"), kb("shm_last_kb"), kb("shm_max_kb")),
        "| shm slope | %s KB/min |" % res.get("slope_shm_kb_min"),
        "| shm in use without allocator overhead (KB) | %s / %s / %s |"
        % (kb("shm_used_first_kb"), kb("shm_used_last_kb"),
           kb("shm_used_max_kb")),
        "| its slope | %s KB/min |" % res.get("slope_shm_used_kb_min"),
        "| shm growth under load by allocation site (mod.stats, > 4 KB) | %s |"
        % (res.get("modstats_load_growth", "-") or "none"),
        "| transactions alive (tm.stats current): first / last / max after warm-up | %s / %s / %s |"
        % (res.get("tm_first"), res.get("tm_last"), res.get("tm_max")),
        "| their slope | %s transactions/min |" % res.get("slope_tm_min"),
        "| tm cells (build_cell) alive: first / last after warm-up, slope; bytes per cell first / last, slope of their bytes | %s / %s, %s/min; %s B / %s B, %s KB/min |"
        % (res.get("cells_first", "-"), res.get("cells_last", "-"),
           res.get("slope_cells_min", "-"), res.get("cells_per_first", "-"),
           res.get("cells_per_last", "-"),
           res.get("slope_cells_b_kb_min", "-")),
        "| request clones (sip_msg_shm_clone) alive: same | %s / %s, %s/min; %s B / %s B, %s KB/min |"
        % (res.get("clones_first", "-"), res.get("clones_last", "-"),
           res.get("slope_clones_min", "-"),
           res.get("clones_per_first", "-"), res.get("clones_per_last", "-"),
           res.get("slope_clones_b_kb_min", "-")),
        "| shm allocator | %s%s |" % (res.get("shm_manager"), "" if res.get(
            "mem_join") is None else ", mem_join %s" % res["mem_join"]),
        "| shm in use before the load / after it, drained (KB) | %s / %s (kept: %s KB; transactions %s / %s) |"
        % (_kb(res.get("shm_baseline")), _kb(res.get("shm_drained")),
           res.get("shm_kept_kb"), res.get("tm_baseline"),
           res.get("tm_left")),
        "| pkg in use, all processes (KB) | %s / %s / %s |"
        % (kb("pkg_first_kb"), kb("pkg_last_kb"), kb("pkg_max_kb")),
        "| pkg slope | %s KB/min |" % res.get("slope_pkg_kb_min"),
        "| RSS, all processes (KB) | %s / %s / %s |"
        % (kb("rss_first_kb"), kb("rss_last_kb"), kb("rss_max_kb")),
        "| RSS slope | %s KB/min |" % res.get("slope_rss_kb_min"),
        "| RssAnon (private) slope | %s KB/min |"
        % res.get("slope_rss_anon_kb_min"),
        "| SIP Server members (requests) | primary %s, backup %s |"
        % (res.get("member_primary"), res.get("member_backup")),
        "",
    ]
    if bad:
        lines += ["Failures:", ""] + ["- %s" % b for b in bad] + [""]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=float, default=300)
    ap.add_argument("--rate", type=float, default=100, help="calls per second")
    ap.add_argument("--hold", type=float, default=2.0, help="call length, s")
    ap.add_argument("--phones", type=int, default=200)
    ap.add_argument("--reg-interval", type=float, default=30)
    ap.add_argument("--switchover-every", type=float, default=60)
    ap.add_argument("--reload-every", type=float, default=10)
    ap.add_argument("--sample", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=None,
                    help="s before slopes are fitted (default: 20%%, at "
                         "most 60 s)")
    ap.add_argument("--max-slope", type=float, default=8.0,
                    help="KB/min of pkg growth that fails the run")
    ap.add_argument("--max-cell-slope", type=float, default=5.0,
                    help="tm cells alive per minute of growth under load "
                         "that fail the run (--mem-debug)")
    ap.add_argument("--max-kept", type=float, default=512,
                    help="KB of shm still in use once the load is over and "
                         "drained, above the baseline, that fail the run")
    ap.add_argument("--children", type=int, default=4)
    ap.add_argument("--shm", type=int, default=64, help="kamailio -m, MB")
    ap.add_argument("--shm-manager", choices=("qm", "fm", "tlsf"),
                    default=None, help="kamailio -x (shm allocator; "
                    "without --mem-debug: Kamailio's default is qm)")
    ap.add_argument("--mem-join", type=int, choices=(0, 1), default=None,
                    help="set the core's mem_join before the load "
                         "(default: kamailio's, 1)")
    ap.add_argument("--phone-transport", choices=("tls", "tcp"),
                    default="tls")
    ap.add_argument("--no-sticky-tcp", action="store_true",
                    help="genesys_tlssticky tcp 0 (diagnostic)")
    ap.add_argument("--asan", metavar="DIR", default=None)
    ap.add_argument("--mem-debug", action="store_true",
                    help="kamailio -x qm -X qm with memory debugging")
    ap.add_argument("--out", default=str(TOP / "build" / "soak"))
    ap.add_argument("--keep", action="store_true",
                    help="keep the work directory")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="soak-"))
    try:
        res = run(a.duration, a.rate, a.hold, a.phones, a.reg_interval,
                  a.switchover_every, a.reload_every, a.sample, a.warmup,
                  a.children, a.asan, a.mem_debug, work,
                  keep_log=str(a.out) + ".log", shm_mb=a.shm,
                  shm_manager=a.shm_manager, mem_join=a.mem_join,
                  phone_tls=a.phone_transport == "tls",
                  sticky_tcp=not a.no_sticky_tcp)
    finally:
        if a.keep:
            print("work directory kept: %s" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    bad = verdict(res, a.max_slope, a.max_kept, a.max_cell_slope)
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    Path(str(out) + ".json").write_text(json.dumps(res, indent=1))
    md = report_md(res, bad, sys.argv)
    Path(str(out) + ".md").write_text(md)
    print(md)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
