#!/usr/bin/env python3
"""System-level binding memory and INVITE routing time as bindings grow.

One TLS phone connection registers N different AORs through a real kamailio
(the reference STICKY_* routes); kamailio's shared memory use (kamcmd
core.shmmem) is read before and after, so the difference is what N
bindings cost in shm, allocator overhead included.  Then the SIP Server
sends INVITEs to a few of those Contacts and the time from INVITE sent to
the phone receiving it is measured (median), at each N.

Usage: bench/sticky/system_bindings.py [--sizes 100,1000,10000]
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parents[1] / "test" / "system"))

import harness  # noqa: E402
import sticky_env as env  # noqa: E402
from tls_ua import Certs, StreamUA, UdpUA, response, build, uri_of  # noqa: E402


def shm_used(k):
    return k.rpc_json("core.shmmem")["used"]


def register_many(phone, srv, proxy_addr, n, batch=200):
    contacts = {}
    i = 0
    while i < n:
        m = min(batch, n - i)
        for j in range(i, i + m):
            aor = "sip:%d@%s" % (200000 + j, proxy_addr)
            c = "<sip:%d@%s:5061;transport=tls>;expires=3600" % (200000 + j, phone.local_ip)
            phone.send(build("REGISTER sip:%s SIP/2.0" % proxy_addr, [
                ("Via", phone.via()), ("Max-Forwards", "70"),
                ("From", "<%s>;tag=f%d" % (aor, j)), ("To", "<%s>" % aor),
                ("Call-ID", "bulk-%d" % j), ("CSeq", "1 REGISTER"),
                ("Contact", c)]))
        for _ in range(m):
            reg = srv.recv(30, want=lambda x: x.method == "REGISTER" and not x.is_reply)
            contacts[reg.hdr("Call-ID")] = uri_of(reg.contacts()[0])
            srv.send(response(reg, 200, "OK", to_tag="r", record_route=False,
                              extra=[("Contact", c) for c in reg.contacts()]), reg.src)
        for _ in range(m):
            phone.recv(30, want=lambda x: x.is_reply)
        i += m
    return contacts


def invite_latency(phone, srv, k, contacts, count=50):
    keys = sorted(contacts)
    times = []
    for i in range(count):
        ruri = contacts[keys[(i * 7919) % len(keys)]]
        t0 = time.perf_counter()
        srv.invite(ruri, (k.address, 5060))
        inv = phone.recv(10, want=lambda m: m.method == "INVITE")
        times.append(time.perf_counter() - t0)
        phone.send(response(inv, 486, "Busy Here", to_tag="b"))
        rpl = srv.recv(10, want=lambda m: m.is_reply and m.status >= 200)
        srv.send(build("ACK %s SIP/2.0" % ruri, [
            ("Via", rpl.hdr("Via")), ("From", rpl.hdr("From")), ("To", rpl.hdr("To")),
            ("Call-ID", rpl.hdr("Call-ID")), ("CSeq", "1 ACK"),
            ("Max-Forwards", "70")]), (k.address, 5060))
    return statistics.median(times) * 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="100,1000,10000")
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="sticky-sys-"))
    certs = Certs(work / "certs")
    print("| bindings | shm bytes per binding | INVITE to phone, median us |")
    print("|---|---|---|")
    for n in [int(x) for x in args.sizes.split(",")]:
        d = work / str(n)
        d.mkdir()
        srv = UdpUA(harness.next_address(), 5060)
        addr = harness.next_address()
        (d / "tls.cfg").write_text(env.tls_cfg(certs))
        k = harness.Kamailio(d / "k", cfg_text=env.render_cfg(debug=1),
                             address=addr, mem_debug=False,
                             defines={"LISTEN_TLS": "tls:%s:5061" % addr,
                                      "TLS_CFG": '"%s"' % (d / "tls.cfg"),
                                      "REGISTRAR": '"sip:%s:5060"' % srv.ip},
                             extra_args=["-m", "256"])
        k.start()
        try:
            phone = StreamUA(harness.next_address(), addr, 5061, timeout=30)
            # warm-up: one registration and one call, then measure
            warm = register_many(phone, srv, addr, 1)
            invite_latency(phone, srv, k, warm, count=3)
            time.sleep(7)
            before = shm_used(k)
            contacts = register_many(phone, srv, addr, n)
            # tm keeps finished transactions for its wait timer (5 s): wait
            # until none is left, so only the bindings remain
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                if k.rpc_json("tm.stats")["current"] == 0:
                    break
                time.sleep(0.5)
            time.sleep(1.2)
            after = shm_used(k)
            lat = invite_latency(phone, srv, k, contacts)
            print("| %d | %.0f | %.0f |" % (n, (after - before) / float(n), lat))
            phone.close()
        finally:
            k.stop(check=False)
            srv.close()


if __name__ == "__main__":
    main()
