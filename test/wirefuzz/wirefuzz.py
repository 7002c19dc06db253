#!/usr/bin/python3
"""Wire mutation fuzzer for the proxy: mutated SIP messages, built from seeds
that reach our modules' code (genesys_ha ";gha=" Routes, genesys_tlssticky
flow tokens in Request-URIs, REGISTER Contacts, requests from pool members,
MWI SUBSCRIBEs), sent over UDP and TCP to kamailio running the reference
etc/kamailio.cfg with a pool.  Every CHECK_EVERY messages it checks that
every kamailio process is still there, that the RPC answers and that a
canary OPTIONS to the proxy gets 200 (over UDP and over TCP); at the end the
kamailio log must show no crash, BUG or memory error (the harness's rules;
kamailio runs with its memory debugging, -x qm).

Deterministic: the same --seed gives the same messages in the same order.

    /usr/bin/python3 test/wirefuzz/wirefuzz.py --count 20000 --seed 4475

(`make wirefuzz`); test/system/test_wirefuzz.py runs a short one in
`make test`.  Prints the figures (messages sent per transport and seed
kind, replies by status, requests that reached the SIP Servers, checks)."""

import argparse
import collections
import os
import random
import re
import socket
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "system"))

import harness  # noqa: E402
import ha_util  # noqa: E402

CHECK_EVERY = 250
DN = "1001"

# fixed-width addresses, so that a seed gives the same mutations at the
# same places (the harness's own 127.20-219.x.y ones are not used)
NET = "127.%d.1." % (230 + os.getpid() % 20)


def addr(n):
    return NET + str(n)        # n in 10..99

# ---------------------------------------------------------------------------
# seeds: (kind, sender, transport-independent template); @...@ are filled in
# ---------------------------------------------------------------------------

SDP = ("v=0\r\no=- 1 1 IN IP4 @ME@\r\ns=-\r\nc=IN IP4 @ME@\r\nt=0 0\r\n"
       "m=audio 4000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n")

COMMON = ("Via: SIP/2.0/@TP@ @ME@:@MEPORT@;branch=z9hG4bK@BR@;rport\r\n"
          "Max-Forwards: 70\r\n"
          "Call-ID: @CID@\r\n")

SEEDS = [
    # in-dialog request from a phone, routed by our Record-Route's pair
    ("gha-route", "phone",
     "BYE sip:sips@@MEMBER@ SIP/2.0\r\n" + COMMON +
     "Route: <sip:@PROXY@;lr;gha=pair1*" + DN + ">\r\n"
     "From: <sip:" + DN + "@@ME@>;tag=a1\r\n"
     "To: <sip:2000@@PROXY@>;tag=b2\r\n"
     "CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"),
    # the double Record-Route form, from a member toward the phone
    ("gha-route", "member",
     "INFO sip:" + DN + "@@PHONE@:5060 SIP/2.0\r\n" + COMMON +
     "Route: <sip:@PROXY@;r2=on;lr;gha=pair1*" + DN + ">, "
     "<sip:@PROXY@;transport=tcp;r2=on;lr;gha=pair1*" + DN + ">\r\n"
     "From: <sip:2000@@MEMBER@>;tag=b2\r\n"
     "To: <sip:" + DN + "@@PHONE@>;tag=a1\r\n"
     "CSeq: 3 INFO\r\nContent-Type: application/dtmf-relay\r\n"
     "Content-Length: 10\r\n\r\nSignal=5\r\n"),
    # a SIP Server calling a phone by its flow token
    ("flow-token", "member",
     "INVITE sip:" + DN + "@@PROXY@:5060;gts=@TOKEN@ SIP/2.0\r\n" + COMMON +
     "From: <sip:2000@@MEMBER@>;tag=s1\r\n"
     "To: <sip:" + DN + "@@PROXY@>\r\n"
     "CSeq: 1 INVITE\r\nContact: <sip:sips@@MEMBER@>\r\n"
     "Content-Type: application/sdp\r\nContent-Length: @LEN@\r\n\r\n" + SDP),
    # in-dialog with the token in our Record-Route
    ("flow-token", "member",
     "BYE sip:" + DN + "@@PHONE@:5060 SIP/2.0\r\n" + COMMON +
     "Route: <sip:@PROXY@;lr;gts=@TOKEN@>\r\n"
     "From: <sip:2000@@MEMBER@>;tag=s1\r\n"
     "To: <sip:" + DN + "@@PROXY@>;tag=p1\r\n"
     "CSeq: 2 BYE\r\nContent-Length: 0\r\n\r\n"),
    # REGISTER with several Contacts
    ("register", "phone",
     "REGISTER sip:@PROXY@ SIP/2.0\r\n" + COMMON +
     "From: <sip:" + DN + "@@PROXY@>;tag=r1\r\n"
     "To: <sip:" + DN + "@@PROXY@>\r\n"
     "CSeq: 7 REGISTER\r\n"
     "Contact: <sip:" + DN + "@@ME@:@MEPORT@;transport=@tp@;ob>;expires=600;"
     "+sip.instance=\"<urn:uuid:0000-1111>\";reg-id=1, "
     "\"Desk\" <sip:" + DN + "b@@ME@:5062;line=x>;q=0.5\r\n"
     "Contact: <sips:" + DN + "c@[::1]:5061>;expires=0\r\n"
     "Expires: 3600\r\nSupported: outbound, path\r\n"
     "Content-Length: 0\r\n\r\n"),
    ("register", "phone",
     "REGISTER sip:@PROXY@ SIP/2.0\r\n" + COMMON +
     "From: <sip:" + DN + "@@PROXY@>;tag=r2\r\n"
     "To: <sip:" + DN + "@@PROXY@>\r\n"
     "CSeq: 8 REGISTER\r\nContact: *\r\nExpires: 0\r\n"
     "Content-Length: 0\r\n\r\n"),
    # initial INVITE from a phone, to the serving pair
    ("initial", "phone",
     "INVITE sip:2000@@PROXY@ SIP/2.0\r\n" + COMMON +
     "From: \"Agent\" <sip:" + DN + "@@PROXY@>;tag=i1\r\n"
     "To: <sip:2000@@PROXY@>\r\n"
     "CSeq: 1 INVITE\r\nContact: <sip:" + DN + "@@ME@:@MEPORT@;transport=@tp@>\r\n"
     "Supported: replaces, timer\r\nSession-Expires: 1800\r\n"
     "Content-Type: application/sdp\r\nContent-Length: @LEN@\r\n\r\n" + SDP),
    # a request from a member: to an endpoint, to a pair, to a member
    ("from-member", "member",
     "INVITE sip:3000@@PHONE@:5060 SIP/2.0\r\n" + COMMON +
     "From: <sip:2000@@MEMBER@>;tag=m1\r\n"
     "To: <sip:3000@@PHONE@>\r\n"
     "CSeq: 1 INVITE\r\nContact: <sip:sips@@MEMBER@>\r\n"
     "Content-Type: application/sdp\r\nContent-Length: @LEN@\r\n\r\n" + SDP),
    ("from-member", "member",
     "OPTIONS sip:pair1@@PROXY@ SIP/2.0\r\n" + COMMON +
     "From: <sip:sips@@MEMBER@>;tag=m2\r\n"
     "To: <sip:pair1@@PROXY@>\r\n"
     "CSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n"),
    ("from-member", "backup",
     "REFER sip:@MEMBER@ SIP/2.0\r\n" + COMMON +
     "From: <sip:sips@@BACKUP@>;tag=m3\r\n"
     "To: <sip:sips@@MEMBER@>\r\n"
     "CSeq: 1 REFER\r\nRefer-To: <sip:4000@@PHONE@>\r\n"
     "Contact: <sip:sips@@BACKUP@>\r\nContent-Length: 0\r\n\r\n"),
    # MWI (RFC 3842) SUBSCRIBE, to the Feature Server
    ("mwi", "phone",
     "SUBSCRIBE sip:" + DN + "@@PROXY@ SIP/2.0\r\n" + COMMON +
     "From: <sip:" + DN + "@@PROXY@>;tag=w1\r\n"
     "To: <sip:" + DN + "@@PROXY@>\r\n"
     "CSeq: 1 SUBSCRIBE\r\nEvent: message-summary;id=1\r\n"
     "Accept: application/simple-message-summary\r\nExpires: 3600\r\n"
     "Contact: <sip:" + DN + "@@ME@:@MEPORT@>\r\nContent-Length: 0\r\n\r\n"),
]

# values that break parsers
NASTY = [
    b"", b" ", b"*", b";", b",", b"=", b"%", b"%0", b"%00", b"%ZZ", b"%2A",
    b"\x00", b"\r", b"\n", b"\r\n", b"\r\n\r\n", b"\t", b"\"", b"<", b">",
    b"@", b":", b"\\", b"\xff", b"\xc3\x28", b"\xef\xbb\xbf",
    b"-1", b"0", b"4294967295", b"4294967296", b"18446744073709551616",
    b"99999999999999999999999", b"0x7fffffff", b"1e9",
    b"sip:", b"sips:", b"tel:+1", b"<sip:x@[::1]:0;lr>", b"[::1", b"[]",
    b"gha=", b"gha", b";gha=;gha=", b"gts=", b";lr;lr;lr",
]
GHA_VALUES = [
    b"", b"*", b"pair1", b"pair1*", b"*1001", b"pair1**1001", b"pair1*1001*x",
    b"%70air1*1001", b"pair1%2A1001", b"pair1*%zz", b"pair1*%", b"PAIR1*1001",
    b"nosuchpair*1001", b"pair1*" + b"9" * 300, b"p" * 300 + b"*1001",
    b"pair1*1001;gha=pair1*1002", b"pair1\x00*1001", b"pair1*10%2001",
]


class Mutator:
    def __init__(self, rng):
        self.r = rng

    def long(self):
        r = self.r
        return r.choice([b"A", b"%41", b";x", b",", b"9", b"*"]) * r.choice(
            [64, 255, 256, 1024, 4096, 8000])

    def value(self):
        r = self.r
        x = r.random()
        if x < 0.5:
            return r.choice(NASTY)
        if x < 0.7:
            return self.long()
        return bytes(r.randrange(256) for _ in range(r.randrange(1, 12)))

    # -- byte level --
    def flip(self, d):
        d = bytearray(d)
        for _ in range(self.r.randrange(1, 8)):
            i = self.r.randrange(len(d))
            d[i] ^= 1 << self.r.randrange(8)
        return bytes(d)

    def insert(self, d):
        i = self.r.randrange(len(d) + 1)
        return d[:i] + self.value() + d[i:]

    def delete(self, d):
        i = self.r.randrange(len(d))
        return d[:i] + d[i + self.r.randrange(1, 64):]

    def truncate(self, d):
        return d[:self.r.randrange(len(d))]

    # -- line level --
    def lines(self, d):
        head, sep, body = d.partition(b"\r\n\r\n")
        return head.split(b"\r\n"), sep, body

    def join(self, ls, sep, body):
        return b"\r\n".join(ls) + sep + body

    def dup_line(self, d):
        ls, sep, body = self.lines(d)
        i = self.r.randrange(len(ls))
        ls.insert(i, ls[i])
        return self.join(ls, sep, body)

    def drop_line(self, d):
        ls, sep, body = self.lines(d)
        if len(ls) > 1:
            del ls[self.r.randrange(1, len(ls))]
        return self.join(ls, sep, body)

    def swap_lines(self, d):
        ls, sep, body = self.lines(d)
        i, j = self.r.randrange(len(ls)), self.r.randrange(len(ls))
        ls[i], ls[j] = ls[j], ls[i]
        return self.join(ls, sep, body)

    def header_value(self, d):
        ls, sep, body = self.lines(d)
        i = self.r.randrange(len(ls))
        name, colon, val = ls[i].partition(b":")
        if not colon:
            ls[i] = self.value()
        else:
            # replace the whole value or a slice of it
            if self.r.random() < 0.5:
                val = b" " + self.value()
            else:
                a = self.r.randrange(len(val) + 1)
                b = min(len(val), a + self.r.randrange(0, 12))
                val = val[:a] + self.value() + val[b:]
            ls[i] = name + colon + val
        return self.join(ls, sep, body)

    def param(self, d):
        """a parameter (;name=value) somewhere: its value, or a new one"""
        ms = list(re.finditer(rb";([\w.+-]+)(=([^;,>\s]*))?", d))
        if not ms:
            return self.insert(d)
        m = self.r.choice(ms)
        x = self.r.random()
        if x < 0.4:
            new = b";" + m.group(1) + b"=" + self.value()
        elif x < 0.6:
            new = m.group(0) * self.r.choice([2, 3, 50])
        elif x < 0.8:
            new = b";" + m.group(1)
        else:
            new = m.group(0) + b";" + self.value() + b"=" + self.value()
        return d[:m.start()] + new + d[m.end():]

    def gha(self, d):
        m = re.search(rb"gha=[^;,>\s]*", d)
        if not m:
            return self.param(d)
        return d[:m.start()] + b"gha=" + self.r.choice(GHA_VALUES) + d[m.end():]

    def token(self, d):
        m = re.search(rb"gts=([^;,>\s]*)", d)
        if not m:
            return self.param(d)
        t = bytearray(m.group(1))
        x = self.r.random()
        if x < 0.4 and t:
            i = self.r.randrange(len(t))
            t[i] = self.r.choice(b"AZaz09-_+/=%.")
        elif x < 0.6:
            t = t[:self.r.randrange(len(t) + 1)]
        elif x < 0.8:
            t = t + t
        else:
            t = bytearray(self.value())
        return d[:m.start(1)] + bytes(t) + d[m.end(1):]

    def contacts(self, d):
        m = re.search(rb"^(Contact|m):[^\r]*", d, re.M | re.I)
        if not m:
            return self.insert(d)
        r = self.r
        x = r.random()
        if x < 0.3:
            one = b"<sip:1001@127.0.0.1:%d;transport=tcp>;expires=%d" % (
                r.randrange(65536), r.choice([0, 1, 600, 2 ** 31, 2 ** 32]))
            new = b"Contact: " + b", ".join([one] * r.choice([2, 20, 100]))
        elif x < 0.5:
            new = b"Contact: *, <sip:x@y>"
        elif x < 0.7:
            new = b"Contact: <sip:1001@" + self.value() + b">;expires=" + self.value()
        else:
            new = m.group(0) + b";" + self.value()
        return d[:m.start()] + new + d[m.end():]

    def content_length(self, d):
        return re.sub(rb"(?mi)^(Content-Length|l):[^\r]*",
                      b"Content-Length: " + self.r.choice(
                          [b"0", b"1", b"-1", b"99999", b"4294967296", b"",
                           b"10 10", b"abc"]), d, count=1)

    OPS = ["flip", "insert", "delete", "truncate", "dup_line", "drop_line",
           "swap_lines", "header_value", "header_value", "param", "param",
           "gha", "token", "contacts", "content_length"]

    def mutate(self, d):
        ops = []
        for _ in range(self.r.choice([1, 1, 1, 2, 2, 3, 4])):
            op = self.r.choice(self.OPS)
            ops.append(op)
            if d:
                d = getattr(self, op)(d)
        return d[:60000], ops


# ---------------------------------------------------------------------------
# the system under test
# ---------------------------------------------------------------------------

class Target:
    """kamailio with the reference cfg and a pool of one pair (two UDP
    Peers) and a Feature Server, plus a phone registered over TCP whose
    flow token the seeds use."""

    def __init__(self, workdir):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.primary = ha_util.Peer(addr(11))
        self.backup = ha_util.Peer(addr(12))
        self.fs = ha_util.Peer(addr(13))
        self.peers = [self.primary, self.backup, self.fs]
        for p in self.peers:
            p.start()
        pool = ha_util.write_pool(
            self.workdir / "pool.xml",
            [("pair1", self.primary.uri, self.backup.uri, None)],
            fs=[("fs1", self.fs.uri, None)])
        self.k = harness.Kamailio(
            self.workdir / "kamailio", cfg_text=ha_util.reference_cfg(),
            address=addr(10),
            defines={"POOL_FILE": '"%s"' % pool, "SIPS_FR_TIMER": "1500"})
        self.k.start()
        ha_util.wait_pool(self.k, lambda p: p["pair1"]["state"] == "up",
                          what="pair1 up")
        self.pids = self.all_pids()
        self._log_pos = 0
        self._last_line = ""
        self.nonlocal_sends = 0
        self.phone_addr = addr(20)
        self.token = self.register_phone()

    def all_pids(self):
        return [pid for pid, _ in self.k.processes()]

    def register_phone(self):
        """REGISTER over TCP; the SIP Server (primary) sees the Contact
        rewritten with the flow token"""
        c = socket.create_connection((self.k.address, self.k.port), timeout=5,
                                     source_address=(self.phone_addr, 0))
        port = c.getsockname()[1]
        n0 = len(self.primary.requests("REGISTER"))
        c.sendall((
            "REGISTER sip:%(p)s SIP/2.0\r\n"
            "Via: SIP/2.0/TCP %(a)s:%(port)d;branch=z9hG4bKreg1;rport\r\n"
            "Max-Forwards: 70\r\nFrom: <sip:%(dn)s@%(p)s>;tag=r0\r\n"
            "To: <sip:%(dn)s@%(p)s>\r\nCall-ID: wirefuzz-reg@%(a)s\r\n"
            "CSeq: 1 REGISTER\r\n"
            "Contact: <sip:%(dn)s@%(a)s:%(port)d;transport=tcp>;expires=3600\r\n"
            "Content-Length: 0\r\n\r\n"
            % dict(p=self.k.address, a=self.phone_addr, port=port, dn=DN)
        ).encode())
        deadline = time.monotonic() + 5
        while len(self.primary.requests("REGISTER")) == n0:
            if time.monotonic() > deadline:
                raise AssertionError("REGISTER did not reach the SIP Server")
            time.sleep(0.02)
        reg = self.primary.requests("REGISTER")[-1]
        m = re.search(r"gts=([A-Za-z0-9_-]+)", reg)
        if not m:
            raise AssertionError("no flow token in the forwarded REGISTER:\n" + reg)
        self.phone_conn = c      # keeps the flow
        return m.group(1)

    def check(self):
        """every process alive, RPC answers, canary OPTIONS gets 200 over
        UDP and TCP; returns a list of problems"""
        bad = []
        for pid in self.pids:
            try:
                st = Path("/proc/%d/stat" % pid).read_text().split()[2]
            except FileNotFoundError:
                st = "gone"
            if st in ("Z", "X", "gone"):
                bad.append("kamailio process %d is %s" % (pid, st))
        if self.k.proc.poll() is not None:
            bad.append("kamailio exited with %s" % self.k.proc.returncode)
            return bad
        r = self.k.rpc_raw("core.uptime", timeout=10)
        if r.returncode != 0 or "uptime" not in r.stdout:
            bad.append("RPC core.uptime failed: %r %r" % (r.stdout, r.stderr))
        for tp in ("udp", "tcp"):
            if not self.canary(tp):
                bad.append("canary OPTIONS over %s got no 200" % tp)
        bad += self.log_failures()
        return bad

    # A mutated address can name a host outside loopback: kamailio's
    # sockets are bound to loopback addresses, so the kernel refuses the
    # send (EINVAL) and stock Kamailio's udp_send() logs that at CRITICAL
    # level; nothing leaves the machine, the request gets 477.  Those lines
    # are counted, not failures (any other CRITICAL is).
    NONLOCAL = re.compile(r"udp_send\(\): sendto\(.*dst: \((\d+)\.[\d.]+:\d+\).*"
                          r"Invalid argument")

    def log_failures(self):
        """failure lines of the log written since the last call"""
        with open(self.k.log, "rb") as f:
            f.seek(self._log_pos)
            chunk = f.read()
        # whole lines only; keep the previous line for the EINVAL context
        end = chunk.rfind(b"\n") + 1
        self._log_pos += end
        lines = [self._last_line] + chunk[:end].decode(
            "utf-8", "replace").splitlines()
        if len(lines) > 1:
            self._last_line = lines[-1]
        bad = []
        for i, ln in enumerate(lines[1:], 1):
            if not any(rx.search(ln) for rx in harness.LOG_FAILURES):
                continue
            if "invalid sendtoparameters" in ln and i > 0:
                m = self.NONLOCAL.search(lines[i - 1])
                if m and m.group(1) != "127":
                    self.nonlocal_sends += 1
                    continue
            if any(rx.search(ln) for rx in harness.SHUTDOWN_NOISE) \
                    and self.k.proc is None:
                continue
            bad.append(ln)
        return bad

    def canary(self, tp, tries=3):
        src = harness.next_address()
        for i in range(tries):
            cid = "canary-%d-%f" % (i, time.time())
            if tp == "udp":
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((src, 0))
            else:
                s = socket.create_connection((self.k.address, self.k.port),
                                             timeout=5, source_address=(src, 0))
            port = s.getsockname()[1]
            msg = ("OPTIONS sip:%s:%d SIP/2.0\r\n"
                   "Via: SIP/2.0/%s %s:%d;branch=z9hG4bKc%s;rport\r\n"
                   "Max-Forwards: 70\r\nFrom: <sip:canary@%s>;tag=c\r\n"
                   "To: <sip:%s:%d>\r\nCall-ID: %s\r\nCSeq: 1 OPTIONS\r\n"
                   "Content-Length: 0\r\n\r\n"
                   % (self.k.address, self.k.port, tp.upper(), src, port,
                      cid, src, self.k.address, self.k.port, cid)).encode()
            try:
                if tp == "udp":
                    s.sendto(msg, (self.k.address, self.k.port))
                else:
                    s.sendall(msg)
                s.settimeout(3)
                deadline = time.monotonic() + 3
                buf = b""
                while time.monotonic() < deadline:
                    data = s.recv(65535)
                    if not data:
                        break
                    buf += data
                    if cid.encode() in buf and b"SIP/2.0 200 " in buf:
                        return True
            except (socket.timeout, OSError):
                pass
            finally:
                s.close()
        return False

    def stop(self):
        try:
            self.phone_conn.close()
        except Exception:
            pass
        try:
            proc = self.k.proc
            self.k.stop(check=False)
            rc = proc.returncode
            bad = self.log_failures()
            if bad or rc not in (0, -15):
                raise AssertionError("kamailio exit code %s, log failures:\n%s"
                                     % (rc, "\n".join(bad[:20])))
        finally:
            for p in self.peers:
                p.stop()


# ---------------------------------------------------------------------------

class Sender:
    """UDP sockets for phones (several addresses) and the members' own
    sockets; TCP connections rotated every few messages (a mutated
    Content-Length can leave kamailio waiting for a body forever)."""

    def __init__(self, t, rng):
        self.t = t
        self.r = rng
        self.udp = []
        for i in range(4):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind((addr(21 + i), 5070))
            s.setblocking(False)
            self.udp.append(s)
        self.tcp = []
        self.replies = collections.Counter()

    def fill(self, tpl, sender, tp, ip, port, n):
        me = {"phone": ip, "member": t_ip(self.t.primary),
              "backup": t_ip(self.t.backup)}[sender]
        body_len = len(tpl.partition("\r\n\r\n")[2])
        d = (tpl.replace("@ME@", me).replace("@MEPORT@", str(port))
             .replace("@TP@", tp.upper()).replace("@tp@", tp)
             .replace("@PROXY@", self.t.k.address)
             .replace("@MEMBER@", t_ip(self.t.primary))
             .replace("@BACKUP@", t_ip(self.t.backup))
             .replace("@PHONE@", self.t.phone_addr)
             .replace("@TOKEN@", self.t.token)
             .replace("@BR@", "%x" % n).replace("@CID@", "wf-%d@fuzz" % n)
             .replace("@LEN@", str(body_len)))
        return d.encode()

    def send(self, n, kind, sender, tpl, tp, mut):
        dst = (self.t.k.address, self.t.k.port)
        if tp == "udp":
            if sender == "phone":
                s = self.r.choice(self.udp)
            else:
                s = (self.t.primary if sender == "member" else self.t.backup).sock
            ip, port = s.getsockname()
            data, ops = mut.mutate(self.fill(tpl, sender, tp, ip, port, n))
            try:
                s.sendto(data, dst)
            except OSError:
                pass
        else:
            src_ip = {"phone": None, "member": t_ip(self.t.primary),
                      "backup": t_ip(self.t.backup)}[sender]
            c = self.conn(src_ip)
            # the Via/Contact port of a stream: a fixed one (replies
            # take the connection)
            data, ops = mut.mutate(self.fill(tpl, sender, tp,
                                             c.getsockname()[0], 5060, n))
            try:
                c.sendall(data)
            except OSError:
                self.drop(c)
        return data, ops

    def conn(self, src_ip):
        # one connection per source kind, replaced every 8 messages
        key = src_ip or "phone"
        for entry in self.tcp:
            if entry[0] == key and entry[2] < 8:
                entry[2] += 1
                return entry[1]
        for entry in [e for e in self.tcp if e[0] == key]:
            self.drop(entry[1])
        c = socket.create_connection(
            (self.t.k.address, self.t.k.port), timeout=5,
            source_address=(src_ip or addr(30 + self.r.randrange(60)), 0))
        c.setblocking(False)
        self.tcp.append([key, c, 1])
        return c

    def drop(self, c):
        self.tcp = [e for e in self.tcp if e[1] is not c]
        try:
            c.close()
        except OSError:
            pass

    def drain(self):
        socks = self.udp + [e[1] for e in self.tcp]
        for s in socks:
            while True:
                try:
                    data = s.recv(65535)
                except (BlockingIOError, InterruptedError):
                    break
                except OSError:
                    break
                if not data:
                    break
                for m in re.finditer(rb"^SIP/2\.0 (\d{3}) ", data, re.M):
                    self.replies[m.group(1).decode()] += 1

    def close(self):
        for s in self.udp:
            s.close()
        for e in self.tcp:
            e[1].close()


def t_ip(peer):
    return peer.address


def run(count, seed, workdir, check_every=CHECK_EVERY, log=print,
        save_failing=None, rate=1000):
    """Run the fuzzer; returns a dict of figures; raises AssertionError at the
    first failed check (with the last messages sent)."""
    rng = random.Random(seed)
    mut = Mutator(random.Random(seed + 1))
    t = Target(workdir)
    figures = {"seed": seed, "sent": 0, "by_transport": collections.Counter(),
               "by_kind": collections.Counter(), "checks": 0}
    recent = collections.deque(maxlen=check_every)
    start = time.monotonic()
    relayed0 = sum(len(p.received) for p in t.peers)
    sender = Sender(t, random.Random(seed + 2))
    ok = False
    try:
        for n in range(count):
            kind, who, tpl = rng.choice(SEEDS)
            tp = rng.choice(("udp", "tcp"))
            data, ops = sender.send(n, kind, who, tpl, tp, mut)
            recent.append((n, tp, kind, ops, data))
            figures["sent"] += 1
            figures["by_transport"][tp] += 1
            figures["by_kind"][kind] += 1
            if n % 50 == 49:
                sender.drain()
                # paced: a flood would measure tm's memory, not parsing
                ahead = (n + 1) / rate - (time.monotonic() - start)
                if ahead > 0:
                    time.sleep(ahead)
            if (n + 1) % check_every == 0 or n + 1 == count:
                sender.drain()
                bad = t.check()
                figures["checks"] += 1
                if bad:
                    if save_failing:
                        Path(save_failing).mkdir(parents=True, exist_ok=True)
                        for (i, tpx, kx, _o, d) in recent:
                            (Path(save_failing) / ("%06d-%s-%s.sip" % (i, tpx, kx))).write_bytes(d)
                    raise AssertionError(
                        "after %d messages (seed %d):\n%s\nlast messages: %s"
                        % (n + 1, seed, "\n".join(bad),
                           [(i, tpx, kx, o) for (i, tpx, kx, o, _d) in
                            list(recent)[-20:]]))
                if (n + 1) % (check_every * 8) == 0:
                    log("  %d messages, %.0f s, all checks passed"
                        % (n + 1, time.monotonic() - start))
        ok = True
    finally:
        sender.close()
        figures["seconds"] = round(time.monotonic() - start, 1)
        figures["reached_sip_servers"] = sum(len(p.received) for p in t.peers) - relayed0
        figures["replies"] = dict(sorted(sender.replies.items()))
        figures["shm"] = t.k.rpc_json("core.shmmem") if t.k.proc else {}
        figures["nonlocal_sends"] = getattr(t, "nonlocal_sends", 0)
        if ok:
            t.stop()     # raises on a crash/BUG/memory error in the log
        else:
            try:
                t.stop()
            except AssertionError as e:
                log(str(e))
    return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--count", type=int, default=20000)
    ap.add_argument("--seed", type=int, default=4475)
    ap.add_argument("--check-every", type=int, default=CHECK_EVERY)
    ap.add_argument("--rate", type=int, default=1000,
                    help="messages per second at most (default 1000)")
    ap.add_argument("--workdir", default=None)
    a = ap.parse_args()
    wd = a.workdir or tempfile.mkdtemp(prefix="wirefuzz-")
    print("wirefuzz: %d messages, seed %d, work directory %s" % (a.count, a.seed, wd))
    f = run(a.count, a.seed, wd, a.check_every,
            save_failing=os.path.join(wd, "failing"), rate=a.rate)
    shm = f.pop("shm")
    print("wirefuzz: PASSED")
    print("  messages sent:      %d (%s)" % (f["sent"], ", ".join(
        "%s %d" % kv for kv in sorted(f["by_transport"].items()))))
    print("  by seed kind:       %s" % ", ".join(
        "%s %d" % kv for kv in sorted(f["by_kind"].items())))
    print("  health checks:      %d (every %d messages: processes, RPC, canary"
          " OPTIONS over UDP and TCP), all passed" % (f["checks"], a.check_every))
    print("  replies received:   %s" % f["replies"])
    print("  reached SIP Servers: %d requests" % f["reached_sip_servers"])
    print("  time:               %.1f s (at most %d messages/s)"
          % (f["seconds"], a.rate))
    if shm:
        print("  shm at the end:     used %s, max used %s of %s" % (
            shm.get("used"), shm.get("max_used"), shm.get("total")))
    print("  relays to non-loopback addresses refused by the kernel (CRITICAL"
          " udp_send EINVAL, stock core): %d" % f["nonlocal_sends"])
    print("  crashes / BUG / memory errors in the log: 0")


if __name__ == "__main__":
    main()
