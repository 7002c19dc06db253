"""Helpers for the genesys_ha system tests: pool files, the reference
kamailio.cfg with a pool, genesys_ha.pool parsing, SIPp SIP Servers and
phones, and a scriptable UDP SIP peer (a SIP Server that can both answer and
send requests from its own address, which one SIPp process cannot do)."""

import re
import socket
import struct
import threading
import time
from pathlib import Path

import harness

# fast probing for tests (genesys_oos parameters)
FAST_OOS = {"oos_check": 1, "oos_force": 1, "oos_timeout": 400,
            "fail_threshold": 1, "ok_threshold": 1}


def pool_xml(pairs, fs=(), proxies=()):
    """pairs: [(name, primary_uri, backup_uri, site or None)];
    fs: [(name, uri, site)]; proxies: [(address, site)]"""
    out = ['<?xml version="1.0"?>', '<pool version="1">']
    if proxies:
        out.append("  <proxies>")
        for addr, site in proxies:
            s = ' site="%s"' % site if site else ""
            out.append('    <proxy address="%s"%s/>' % (addr, s))
        out.append("  </proxies>")
    for name, pri, bak, site in pairs:
        s = ' site="%s"' % site if site else ""
        out.append('  <sipserver name="%s"%s>' % (name, s))
        out.append('    <primary uri="%s"/>' % pri)
        out.append('    <backup uri="%s"/>' % bak)
        out.append("  </sipserver>")
    for name, uri, site in fs:
        s = ' site="%s"' % site if site else ""
        out.append('  <featureserver name="%s"%s uri="%s"/>' % (name, s, uri))
    out.append("</pool>")
    return "\n".join(out) + "\n"


def write_pool(path, *args, **kw):
    Path(path).write_text(pool_xml(*args, **kw))
    return str(path)


def reference_cfg(oos=None):
    """etc/kamailio.cfg with genesys_oos parameters set for tests (the
    reference values are replaced; missing ones are added)."""
    text = harness.REFERENCE_CFG.read_text()
    for name, val in (oos or FAST_OOS).items():
        rx = re.compile(r'modparam\("genesys_oos", "%s", [^)]*\)' % name)
        line = 'modparam("genesys_oos", "%s", %d)' % (name, val)
        if rx.search(text):
            text = rx.sub(line, text)
        else:
            text = text.replace('loadmodule "genesys_ha"\n',
                                'loadmodule "genesys_ha"\n%s\n' % line, 1)
    return text


def start_proxy(kamailio_factory, pool_path, name="proxy", defines=None,
                oos=None, address=None, cfg_text=None, **kw):
    """The reference etc/kamailio.cfg with a pool file."""
    d = {"POOL_FILE": '"%s"' % pool_path, "SIPS_FR_TIMER": "1500",
         "SIPS_NI_FR_TIMER": "1500"}
    d.update(defines or {})
    return kamailio_factory(name=name, cfg_text=cfg_text or reference_cfg(oos),
                            defines=d, address=address, **kw)


def pool(k):
    """genesys_ha.pool (JSON-RPC) -> {pair name: pair, '_fs': {name: feature
    server}}: the RPC's pairs keyed by name, a pair's members keyed by role
    ({role: {uri, address, state, since, active, probe_id}}), numbers as
    numbers; the pool's own fields (generation, file, ...) under '_pool'."""
    res = k.rpc_json("genesys_ha.pool")
    pairs = {}
    for pair in res["pairs"] if isinstance(res["pairs"], list) else []:
        pair = dict(pair)
        pair["members"] = {m["role"]: m for m in pair.get("members", [])}
        pairs[pair["name"]] = pair
    pairs["_fs"] = {f["name"]: f for f in res.get("feature_servers", [])}
    pairs["_pool"] = {key: val for key, val in res.items()
                      if key not in ("pairs", "feature_servers")}
    return pairs


def wait_pool(k, pred, timeout=8.0, what="condition"):
    """Poll genesys_ha.pool until pred(pool) is true; returns the pool."""
    deadline = time.monotonic() + timeout
    while True:
        p = pool(k)
        try:
            if pred(p):
                return p
        except KeyError:
            pass
        if time.monotonic() > deadline:
            raise AssertionError("genesys_ha.pool: %s not reached within "
                                 "%.1fs:\n%s" % (what, timeout, p))
        time.sleep(0.1)


def sipserver(sipp_factory, tmp_path, name, address=None, code=200,
              transport="u1"):
    """A SIPp SIP Server (ha_sipserver.xml); code: reply to OPTIONS."""
    scen = harness.SIPP_DIR / "ha_sipserver.xml"
    if code != 200:
        text = scen.read_text()
        # the first 200 is the reply to OPTIONS (and other requests)
        text = text.replace("SIP/2.0 200 OK", "SIP/2.0 %d Unavailable" % code, 1)
        scen = Path(tmp_path) / ("ha_sipserver_%d.xml" % code)
        scen.write_text(text)
    return sipp_factory(str(scen), name, address=address, calls=100000,
                        timeout=120, transport=transport)


def phone(sipp_factory, k, name, calls=1, hold_ms=100, rate=None,
          timeout=30, address=None):
    args = ["-d", str(hold_ms)]
    if rate:
        args += ["-r", str(rate)]
    return sipp_factory("ha_phone_call.xml", name, remote="%s:%d"
                        % (k.address, k.port), calls=calls, extra_args=args,
                        service="2000", timeout=timeout, address=address)


def _hdrs(lines, *names):
    names = tuple(n.lower() + ":" for n in names)
    return [l for l in lines if l.lower().startswith(names)]


class Peer(threading.Thread):
    """A UDP SIP Server on (address, port): answers OPTIONS with
    `options_code` (None: silent), INVITE with 200 (Contact = itself), BYE
    and other requests with 200 (`answer_requests`); records every request
    received; send_request() sends from the same socket."""

    def __init__(self, address=None, port=5060, options_code=200,
                 answer_requests=True, invite_code=200):
        super().__init__(daemon=True)
        self.address = address or harness.next_address()
        self.port = port
        self.options_code = options_code
        self.answer_requests = answer_requests
        self.invite_code = invite_code
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.address, port))
        self.sock.settimeout(0.05)
        self.received = []      # (time, text, src)
        self.responses = []     # replies to our own requests
        self._quit = threading.Event()
        self._lock = threading.Lock()

    @property
    def uri(self):
        return "sip:%s:%d" % (self.address, self.port)

    def requests(self, method):
        with self._lock:
            return [t for _, t, _ in self.received
                    if t.startswith(method + " ")]

    def run(self):
        while not self._quit.is_set():
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                break
            text = data.decode(errors="replace")
            if text.startswith("SIP/2.0 "):
                with self._lock:
                    self.responses.append(text)
                continue
            with self._lock:
                self.received.append((time.monotonic(), text, src))
            method = text.split(" ", 1)[0]
            lines = text.split("\r\n")
            if method == "ACK":
                continue
            if method == "OPTIONS":
                code = self.options_code
            elif not self.answer_requests:
                code = None
            elif method == "INVITE":
                code = self.invite_code
            else:
                code = 200
            if code is None:
                continue
            self.sock.sendto(self._reply(lines, code, method), src)

    def _reply(self, lines, code, method):
        out = ["SIP/2.0 %d Peer" % code]
        out += _hdrs(lines, "Via", "v")
        out += _hdrs(lines, "From", "f")
        to = _hdrs(lines, "To", "t")
        out += [l if ";tag=" in l else l + ";tag=peer%d" % self.port for l in to]
        out += _hdrs(lines, "Call-ID", "i")
        out += _hdrs(lines, "CSeq")
        if method == "INVITE":
            out += _hdrs(lines, "Record-Route")
            out.append("Contact: <sip:sips@%s:%d>" % (self.address, self.port))
        out += ["Content-Length: 0", "", ""]
        return "\r\n".join(out).encode()

    def send_request(self, dest, method, ruri, headers=None, wait=2.0,
                     full=False):
        """Send a request from this peer's socket; returns the final reply
        (first line, or all of it with full=True) or None."""
        callid = "peer-%f@%s" % (time.time(), self.address)
        extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        msg = ("%s %s SIP/2.0\r\n"
               "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%d\r\n"
               "From: <sip:sipserver@%s>;tag=p1\r\n"
               "To: <%s>\r\n"
               "Call-ID: %s\r\n"
               "CSeq: 1 %s\r\n"
               "Contact: <sip:sips@%s:%d>\r\n"
               "Max-Forwards: 70\r\n%s"
               "Content-Length: 0\r\n\r\n"
               % (method, ruri, self.address, self.port,
                  int(time.time() * 1e6), self.address, ruri, callid, method,
                  self.address, self.port, extra))
        n0 = len(self.responses)
        self.sock.sendto(msg.encode(), dest)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            with self._lock:
                for r in self.responses[n0:]:
                    if callid in r and not r.startswith("SIP/2.0 1"):
                        return r if full else r.split("\r\n", 1)[0]
            time.sleep(0.02)
        return None

    def stop(self):
        self._quit.set()
        self.join(timeout=2)
        self.sock.close()


def udp_request(k, method, ruri, headers=None, route=None, timeout=3.0,
                address=None, body_from=None):
    """Send one request to kamailio from a fresh address (an endpoint);
    returns (first line of the final reply, full reply text) or (None, None)."""
    addr = address or harness.next_address()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    port = s.getsockname()[1]
    callid = "ep-%f@%s" % (time.time(), addr)
    hdrs = dict(headers or {})
    extra = ""
    if route:
        extra += "Route: %s\r\n" % route
    extra += "".join("%s: %s\r\n" % kv for kv in hdrs.items())
    totag = ";tag=x1" if route else ""
    msg = ("%s %s SIP/2.0\r\n"
           "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%d;rport\r\n"
           "From: <sip:%s@%s>;tag=e1\r\n"
           "To: <%s>%s\r\n"
           "Call-ID: %s\r\n"
           "CSeq: 1 %s\r\n"
           "Contact: <sip:ep@%s:%d>\r\n"
           "Max-Forwards: 70\r\n%s"
           "Content-Length: 0\r\n\r\n"
           % (method, ruri, addr, port, int(time.time() * 1e6),
              body_from or "1001", addr, ruri, totag, callid, method, addr,
              port, extra))
    s.settimeout(timeout)
    try:
        s.sendto(msg.encode(), (k.address, k.port))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            data, _ = s.recvfrom(65535)
            text = data.decode(errors="replace")
            if not text.startswith("SIP/2.0 1"):
                return text.split("\r\n", 1)[0], text
    except socket.timeout:
        return None, None
    finally:
        s.close()
    return None, None


def forge_udp(src, dst, payload):
    """Send one UDP datagram with the source address AND port `src` without
    owning that port (the real peer keeps it): a raw socket bound to the
    source address (on loopback), UDP header written by hand, checksum 0
    (none, allowed over IPv4). Needs CAP_NET_RAW."""
    data = payload.encode() if isinstance(payload, str) else payload
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(data), 0) + data
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_UDP)
    try:
        s.bind((src[0], 0))
        s.sendto(udp, (dst[0], 0))
    finally:
        s.close()


def forged_request(src, dst, method, ruri):
    """A request "from" a SIP Server at src=(address, port) (its Via, From
    and Contact), sent with forge_udp(); its replies go to the real owner."""
    callid = "forged-%f@%s" % (time.time(), src[0])
    msg = ("%s %s SIP/2.0\r\n"
           "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bKforged%d\r\n"
           "From: <sip:sipserver@%s>;tag=f1\r\n"
           "To: <%s>\r\n"
           "Call-ID: %s\r\n"
           "CSeq: 1 %s\r\n"
           "Contact: <sip:sips@%s:%d>\r\n"
           "Max-Forwards: 70\r\n"
           "Content-Length: 0\r\n\r\n"
           % (method, ruri, src[0], src[1], int(time.time() * 1e6), src[0],
              ruri, callid, method, src[0], src[1]))
    forge_udp(src, dst, msg)
    return callid
