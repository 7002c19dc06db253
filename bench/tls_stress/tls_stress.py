#!/usr/bin/python3
"""TLS phones at scale through the reference configuration.

Starts Debian's kamailio with etc/kamailio.cfg -A WITH_TLS (etc/tls.cfg with
a test CA), 4 TLS workers (CHILDREN=4, tcp_children), REGISTERs relayed to a
registrar (the SIP Server, UDP, in this process). Then N TLS phones (asyncio
+ ssl, one connection each from loopback addresses) connect, REGISTER, are
called once (INVITE from the SIP Server to the rewritten Contact, through
the proxy, over the phone's own connection; the phone answers 486), stay
connected for --duration seconds and are called once more at the end.

Reported: phones connected/registered/called/reachable at the end, CRITICAL
and BUG lines of kamailio's log, whether kamailio survived, shm per phone
(kamcmd core.shmmem real_used before and after), REGISTER and INVITE-to-phone
latency (p50/p99).

  --openssl-atfork 0   runs without genesys_tlssticky's fork fix (the
                       OPENSSL_ATFORK define of the reference cfg): Kamailio
                       5.6.3 + OpenSSL 3 crashes (issue 12 / Kamailio 3791)

Usage: bench/tls_stress/tls_stress.py --phones 5000 --duration 600
       bench/tls_stress/tls_stress.py --phones 5000 --duration 60 --openssl-atfork 0
"""

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "test" / "system"))

import harness  # noqa: E402
from cfgbuild import kamailio_cfg  # noqa: E402
import tls_swarm  # noqa: E402
from tls_ua import Certs  # noqa: E402

SECRET = "bench-pool-secret-0123456789abcdef"

# --config plain: stock Kamailio as a TLS relay, no genesys module. REGISTERs
# go unchanged to the registrar; the phones register their connection's own
# address, and INVITEs are relayed by Request-URI, which finds the phone's
# connection by that address. The floor for memory and latency.
# genesys_tlssticky is loaded for its fork fix only (no function of it is
# called): stock 5.6.3 alone crashes at these phone counts. TLS settings as
# the reference config's (ssl_release_buffers 1), so the difference is the
# routing and the modules.
PLAIN_CFG = kamailio_cfg(
    log_stderror=False, tcp_children="CHILDREN",
    listen=("LISTEN_UDP", "LISTEN_TLS"),
    globals_="""disable_core_dump=yes
enable_tls=yes
tcp_connection_lifetime=3605
tcp_accept_no_cl=yes
tcp_keepalive=yes
tcp_max_connections=TCP_MAX_CONNECTIONS
tls_max_connections=TLS_MAX_CONNECTIONS
open_files_limit=OPEN_FILES_LIMIT""",
    modules=("tm", "sl", "pv", "textops", "tls", "genesys_tlssticky"),
    body="""modparam("tls", "config", TLS_CFG)
modparam("tls", "connection_timeout", 3605)
modparam("tls", "ssl_release_buffers", 1)
modparam("genesys_tlssticky", "secret", "%s")
modparam("genesys_tlssticky", "openssl_atfork", OPENSSL_ATFORK)
request_route {
	if (is_method("ACK") && !t_check_trans()) exit;
	if (is_method("REGISTER")) $du = REGISTRAR;
	if (!t_relay()) sl_reply_error();
	exit;
}
""" % SECRET)


def start_proxy(workdir, certs, registrar_ip, args):
    addr = harness.next_address()
    tcfg = tls_swarm.reference_tls_cfg(certs, workdir / "tls.cfg")
    maxc = max(2048, int(args.phones * 1.2) + 100)
    capacity = {"TCP_MAX_CONNECTIONS": str(maxc),
                "TLS_MAX_CONNECTIONS": str(maxc),
                "OPEN_FILES_LIMIT": str(maxc + 4096)}
    if args.cfg_capacity:
        capacity = {}   # the reference cfg's own (10,000 phones)
    k = harness.Kamailio(
        workdir / "kamailio", address=addr,
        cfg_text=(PLAIN_CFG if args.config == "plain"
                  else tls_swarm.reference_cfg_text()),
        defines={"WITH_TLS": None, "LISTEN_TLS": "tls:%s:5061" % addr,
                 "TLS_CFG": '"%s"' % tcfg, "CHILDREN": str(args.children),
                 "REGISTRAR": '"sip:%s:5060"' % registrar_ip,
                 "STICKY_SECRET": '"%s"' % SECRET,
                 "OPENSSL_ATFORK": str(args.openssl_atfork), **capacity},
        extra_args=["-m", str(args.shm)])
    return k.start(timeout=30)


def run(args, log=print):
    """one stress run; returns the result dict"""
    tls_swarm.raise_nofile(args.phones * 2 + 8192)
    tmp = Path(tempfile.mkdtemp(prefix="tls_stress-"))
    certs = Certs(tmp / "certs")
    registrar_ip = harness.next_address()
    nsrc = max(1, (args.phones + 9999) // 10000)
    source_ips = [harness.next_address() for _ in range(nsrc)]
    k = start_proxy(tmp, certs, registrar_ip, args)
    log("kamailio %s (%s config): %d TLS workers, -m %d, openssl_atfork=%d,"
        " log %s" % (k.address, args.config, args.children, args.shm,
                     args.openssl_atfork, k.log))
    shm0 = tls_swarm.shm_real_used(k)
    info = {}

    def alive():
        return k.proc is not None and k.proc.poll() is None

    def registered(res):
        info["shm_after_setup"] = (tls_swarm.shm_real_used(k)
                                   if alive() else None)
        log("setup %.1fs: %d connected, %d registered, %d called, "
            "%d CRITICAL/BUG lines, kamailio %s"
            % (res["setup_s"], res["connected"], res["registered"],
               res["called"], len(tls_swarm.critical_lines(k)),
               "alive" if alive() else "DEAD"))

    def tick(elapsed, phones):
        up = sum(1 for p in phones if p.writer is not None and not p.closed)
        if alive():
            info["shm_held"] = tls_swarm.shm_real_used(k)
            info["phones_held"] = up
            info["tcp_info"] = k.rpc_json("core.tcp_info")
        log("  t+%4.0fs: %d phones connected, %d CRITICAL/BUG lines, "
            "kamailio %s" % (elapsed, up, len(tls_swarm.critical_lines(k)),
                             "alive" if alive() else "DEAD"))
        if not alive():
            return False
        return None

    t0 = time.monotonic()
    res = asyncio.run(tls_swarm.run_swarm(
        k.address, 5061, registrar_ip, 5060, args.phones, source_ips,
        hold=args.duration, concurrency=args.concurrency,
        on_tick=tick, tick=args.tick, on_registered=registered,
        real_contact=args.config == "plain", probe=args.probe))
    res["wall_s"] = round(time.monotonic() - t0, 1)
    res["kamailio_alive"] = alive()
    res["openssl_atfork"] = args.openssl_atfork
    res["config"] = args.config
    res["shm_mb"] = args.shm
    crit = tls_swarm.critical_lines(k)
    res["critical_lines"] = len(crit)
    res["first_critical"] = crit[:3]
    if info.get("shm_after_setup") and res["registered"]:
        res["shm_per_phone_kb"] = round(
            (info["shm_after_setup"] - shm0) / res["registered"] / 1024.0, 1)
    if info.get("shm_held") and info.get("phones_held"):
        # transactions gone (tm wait timer): what a live phone costs
        res["shm_per_held_phone_kb"] = round(
            (info["shm_held"] - shm0) / info["phones_held"] / 1024.0, 1)
    res["shm_baseline_mb"] = round(shm0 / 1048576.0, 1)
    res["tcp_info_held"] = info.get("tcp_info")
    k.stop(check=False)
    res["log"] = str(k.log)
    return res


def compare(args):
    rows = []
    for n in [int(x) for x in args.sizes.split(",")]:
        for cfg in ("plain", "reference"):
            a = argparse.Namespace(**vars(args))
            a.phones, a.config = n, cfg
            a.shm = args.shm or 64 + (n * 100 + 1023) // 1024
            a.tick = min(args.tick, max(1.0, args.duration / 2))
            r = run(a, log=lambda *x: None)
            rows.append((n, cfg, r))
            print(json.dumps(r), file=sys.stderr)
    print("| phones | config | registered | shm per phone KB | REGISTER p50/p99 ms"
          " | INVITE to phone p50/p99 ms | set-up s | CRITICAL |")
    print("|---|---|---|---|---|---|---|---|")
    for n, cfg, r in rows:
        print("| %d | %s | %d | %s | %s / %s | %s / %s | %.1f | %d |" % (
            n, cfg, r["registered"], r.get("shm_per_held_phone_kb"),
            r.get("probe_reg_p50_ms"), r.get("probe_reg_p99_ms"),
            r.get("probe_call_p50_ms"), r.get("probe_call_p99_ms"),
            r["setup_s"], r["critical_lines"]))
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=1))
    return 0 if all(r["critical_lines"] == 0 and r["registered"] == n
                    for n, _, r in rows) else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--phones", type=int, default=5000)
    ap.add_argument("--duration", type=float, default=600,
                    help="seconds all phones stay connected (default 600)")
    ap.add_argument("--openssl-atfork", type=int, choices=(0, 1), default=1)
    ap.add_argument("--config", choices=("reference", "plain"),
                    default="reference",
                    help="plain: stock Kamailio TLS relay, no genesys module"
                    " (and no fork fix)")
    ap.add_argument("--children", type=int, default=4,
                    help="TLS workers (tcp_children) and UDP workers")
    ap.add_argument("--shm", type=int, default=0,
                    help="kamailio -m in MB (default: 64 + 100 KB per phone)")
    ap.add_argument("--concurrency", type=int, default=200,
                    help="TLS handshakes + REGISTERs in flight")
    ap.add_argument("--cfg-capacity", action="store_true",
                    help="keep the reference cfg's connection and fd limits"
                    " (sized for 10,000 phones) instead of 1.2 x --phones")
    ap.add_argument("--tick", type=float, default=30)
    ap.add_argument("--probe", type=int, default=200,
                    help="phones that re-REGISTER and are called one at a"
                    " time after the set-up (latency under n live phones)")
    ap.add_argument("--sizes",
                    help="e.g. 100,1000,5000: a run per size with the plain"
                    " relay and the reference config each (--duration"
                    " each); prints a table")
    ap.add_argument("--json", help="write the result here")
    args = ap.parse_args()
    if args.sizes:
        sys.exit(compare(args))
    if not args.shm:
        args.shm = 64 + (args.phones * 100 + 1023) // 1024
    res = run(args)
    print(json.dumps(res, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(res, indent=1))
    ok = (res["kamailio_alive"] and res["critical_lines"] == 0
          and res["registered"] == args.phones
          and res.get("reachable_at_end") == args.phones)
    print("PASS" if ok else "FAIL")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
