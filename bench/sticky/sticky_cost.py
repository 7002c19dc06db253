#!/usr/bin/env python3
"""Per-REGISTER and per-INVITE cost of genesys_tlssticky's work (callgrind).

A TLS phone (test/system/tls_ua.py) registers N times, then a UDP "SIP
Server" sends N INVITEs to it (the phone answers 486, the SIP Server ACKs).
Two kamailio configs do the same job:

  baseline  REGISTER relayed unchanged; the INVITE carries the phone's
            address in X-Du and the config sets $du from it with
            set_forward_no_connect(): what stock Kamailio would need to be told
  sticky    the reference config's STICKY_* routes (Contact rewrite, token
            sign/verify, binding table, Contact restore in the 200 OK)

Instructions are summed over kamailio's SIP receiver processes, for two
values of N, and the difference divided by the difference in N: start-up,
TLS handshake and shutdown cancel out.

--inflight: only the INVITE phase, sticky with the tracking of requests in
flight (inflight_max default) against sticky without it (inflight_max 0):
the cost of the tm callback and the slot per request.

Usage: bench/sticky/sticky_cost.py [--n1 20 --n2 100] [--inflight]
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "test" / "system"))

import harness  # noqa: E402
from cfgbuild import kamailio_cfg  # noqa: E402
import sticky_env as env  # noqa: E402

sys.path.insert(0, str(HERE.parent))
from benchlib import MEM_ARGS, sum_callgrind, under_callgrind, worker_pids  # noqa: E402
from tls_ua import Certs, StreamUA, UdpUA, response, build, uri_of  # noqa: E402

BASELINE = kamailio_cfg(
    debug=1, tcp_children="CHILDREN", listen=("LISTEN_UDP", "LISTEN_TLS"),
    globals_="enable_tls=yes",
    modules=("tm", "sl", "rr", "pv", "corex", "textops", "siputils", "tls"),
    body="""modparam("tls", "config", TLS_CFG)
request_route {
	if (is_method("REGISTER")) {
		$du = REGISTRAR;
		t_relay();
		exit;
	}
	if ($hdr(X-Du) != $null) {
		$du = $hdr(X-Du);
		set_forward_no_connect();
		if (is_method("INVITE")) record_route();
	}
	t_relay();
}
""")


def one_run(workdir, certs, variant, phase, n):
    d = workdir / ("%s-%s-%d" % (variant, phase, n))
    d.mkdir(parents=True)
    srv = UdpUA(harness.next_address(), 5060)
    addr = harness.next_address()
    (d / "tls.cfg").write_text(env.tls_cfg(certs))
    if variant == "baseline":
        cfg = BASELINE
    elif variant == "untracked":
        cfg = env.render_cfg(debug=1, modparams=[("inflight_max", 0)])
    else:
        cfg = env.render_cfg(debug=1)
    k = harness.Kamailio(d / "k", cfg_text=cfg, address=addr, mem_debug=False,
                         defines={"LISTEN_TLS": "tls:%s:5061" % addr,
                                  "TLS_CFG": '"%s"' % (d / "tls.cfg"),
                                  "REGISTRAR": '"sip:%s:5060"' % srv.ip,
                                  "CHILDREN": "1"},
                         extra_args=MEM_ARGS)
    under_callgrind(k, d)
    k.start(timeout=120)
    pids = worker_pids(k)
    phone = StreamUA(harness.next_address(), addr, 5061, timeout=30)

    def register():
        phone.register(addr, expires=600, call_id="bench-reg")
        reg = srv.recv(30, want=lambda m: m.method == "REGISTER")
        srv.send(response(reg, 200, "OK", to_tag="r", record_route=False,
                          extra=[("Contact", c) for c in reg.contacts()]), reg.src)
        phone.recv(30, want=lambda m: m.is_reply)
        return reg

    reg = register()
    target = uri_of(reg.contacts()[0])
    xdu = "sip:%s:%d;transport=tls" % (phone.local_ip, phone.local_port)
    time.sleep(0.5)
    for i in range(n):
        if phase == "register":
            register()
            continue
        extra = [("X-Du", xdu)] if variant == "baseline" else []
        inv = srv.invite(target if variant != "baseline" else phone.contact_uri(),
                         (addr, 5060), extra=extra)
        pinv = phone.recv(30, want=lambda m: m.method == "INVITE")
        phone.send(response(pinv, 486, "Busy Here", to_tag="p"))
        rpl = srv.recv(30, want=lambda m: m.is_reply and m.status >= 200)
        srv.send(build("ACK %s SIP/2.0" % inv.ruri, [
            ("Via", inv.hdr("Via")), ("From", inv.hdr("From")),
            ("To", rpl.hdr("To")), ("Call-ID", inv.hdr("Call-ID")),
            ("CSeq", "1 ACK"), ("Max-Forwards", "70")]), (addr, 5060))
    time.sleep(1)
    phone.close()
    k.stop(check=False)
    srv.close()
    return sum_callgrind(d, pids)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--n1", type=int, default=20)
    ap.add_argument("--n2", type=int, default=100)
    ap.add_argument("--inflight", action="store_true")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sticky-bench-"))
    certs = Certs(work / "certs")
    res = {}
    if args.inflight:
        for variant in ("untracked", "sticky"):
            a = one_run(work, certs, variant, "invite", args.n1)
            b = one_run(work, certs, variant, "invite", args.n2)
            res[variant] = (b - a) / float(args.n2 - args.n1)
        u, s = res["untracked"], res["sticky"]
        print("| INVITE + 486 + ACK | inflight_max 0 | default | tracking |")
        print("|---|---|---|---|")
        print("| instructions | %.0f | %.0f | +%.0f (%.1f %%) |"
              % (u, s, s - u, 100.0 * (s - u) / s))
        return
    for phase in ("register", "invite"):
        for variant in ("baseline", "sticky"):
            a = one_run(work, certs, variant, phase, args.n1)
            b = one_run(work, certs, variant, phase, args.n2)
            res[(phase, variant)] = (b - a) / float(args.n2 - args.n1)
    print("| transaction | baseline instr. | sticky instr. | module share |")
    print("|---|---|---|---|")
    for phase, label in (("register", "REGISTER + 200 OK"),
                         ("invite", "INVITE + 486 + ACK")):
        b, s = res[(phase, "baseline")], res[(phase, "sticky")]
        print("| %s | %.0f | %.0f | +%.0f (%.1f %%) |"
              % (label, b, s, s - b, 100.0 * (s - b) / s))


if __name__ == "__main__":
    main()
