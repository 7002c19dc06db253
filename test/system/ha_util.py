"""Helpers for the genesys_ha system tests: pool files, the reference
kamailio.cfg with a pool, genesys_ha.pool parsing, SIPp SIP Servers and
phones, and a scriptable UDP SIP peer (a SIP Server that can both answer and
send requests from its own address, which one SIPp process cannot do)."""

import re
import socket
import struct
import time
from pathlib import Path

import harness
from sip_peer import Msg, SipPeer

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
                                 "%.1fs:\n%s" % (what, timeout,
                                                 diagnose(k)))
        time.sleep(0.1)


def diagnose(k):
    """What a failed wait needs to be understood from a CI log alone:
    genesys_ha's view, genesys_oos's view of each target and the proxy's
    log lines about probes and members."""
    out = []
    for cmd in ("genesys_ha.pool", "genesys_oos.list"):
        try:
            out.append("%s:\n%s" % (cmd, k.rpc(cmd)))
        except Exception as e:  # the proxy may be the thing that failed
            out.append("%s: %s" % (cmd, e))
    try:
        lines = [ln for ln in k.log_text().splitlines()
                 if re.search(r"genesys_|ERROR|CRITICAL|tcp_main", ln)]
    except OSError as e:
        lines = ["(log: %s)" % e]
    out.append("log (genesys_/ERROR lines, last 60):\n" + "\n".join(lines[-60:]))
    return "\n".join(out)


def tcp_sipp_pair(sipp_factory, tmp_path, name="SIPS_T"):
    """a pool file with one pair of SIPp SIP Servers on TCP, both started:
    (pool path, primary, backup)"""
    pri_addr, bak_addr = harness.next_address(), harness.next_address()
    path = write_pool(Path(tmp_path) / "pool.xml", [
        (name, "sip:%s:5060;transport=tcp" % pri_addr,
         "sip:%s:5060;transport=tcp" % bak_addr, None)])
    pri = sipserver(sipp_factory, tmp_path, "primary", address=pri_addr,
                    transport="t1").start()
    bak = sipserver(sipp_factory, tmp_path, "backup", address=bak_addr,
                    transport="t1").start()
    return path, pri, bak


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


class Peer(SipPeer):
    """A UDP SIP Server on (address, port) (sip_peer.SipPeer): answers
    OPTIONS with `options_code` (None: silent), INVITE with `invite_code`
    (Contact = itself), BYE and other requests with 200 while
    `answer_requests`; records every request received (`received`: (time,
    text, src)) and the replies to its own requests (`responses`);
    send_request() sends from the same socket.  The three attributes are
    answer rules: a test changes them while the peer runs."""

    reason = "Peer"

    def __init__(self, address=None, port=5060, options_code=200,
                 answer_requests=True, invite_code=200):
        self._invite_code = invite_code
        super().__init__("udp", address=address, port=port,
                         rules={"OPTIONS": options_code,
                                "INVITE": invite_code})
        self.answer_requests = answer_requests
        self.received = []      # (time, text, src)
        self.responses = []     # replies to our own requests

    options_code = property(lambda self: self.rules["OPTIONS"],
                            lambda self, c: self.answer("OPTIONS", c))

    @property
    def answer_requests(self):
        return self.rules["*"] is not None

    @answer_requests.setter
    def answer_requests(self, on):
        self.rules["*"] = 200 if on else None
        self.rules["INVITE"] = self._invite_code if on else None

    @property
    def invite_code(self):
        return self._invite_code

    @invite_code.setter
    def invite_code(self, code):
        self._invite_code = code
        if self.answer_requests:
            self.rules["INVITE"] = code

    def record(self, msg):
        if msg.is_reply:
            self.responses.append(msg.text)
        else:
            self.received.append((msg.time, msg.text, msg.src))

    def requests(self, method):
        """the text of every request of method received"""
        with self._lock:
            return [t for _, t, _ in self.received
                    if t.startswith(method + " ")]

    def build_reply(self, msg, code, reason=None):
        return self._reply(msg.text.split("\r\n"), code, msg.method)

    def _reply(self, lines, code, method):
        """the reply to the request whose lines are given (bench/soak
        extends it)"""
        return SipPeer.build_reply(self, Msg("\r\n".join(lines), None),
                                   code)


def endpoint_request(method, ruri, addr, port, callid, route=None,
                     headers=None, from_user="1001", branch=None):
    """The text of a request from an endpoint at addr:port (UDP Via with
    rport, From tag e1; with a Route: in dialog, To tag x1)."""
    extra = "Route: %s\r\n" % route if route else ""
    extra += "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
    return ("%s %s SIP/2.0\r\n"
            "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%d;rport\r\n"
            "From: <sip:%s@%s>;tag=e1\r\n"
            "To: <%s>%s\r\n"
            "Call-ID: %s\r\n"
            "CSeq: 1 %s\r\n"
            "Contact: <sip:ep@%s:%d>\r\n"
            "Max-Forwards: 70\r\n%s"
            "Content-Length: 0\r\n\r\n"
            % (method, ruri, addr, port,
               branch if branch is not None else int(time.time() * 1e6),
               from_user, addr, ruri, ";tag=x1" if route else "", callid,
               method, addr, port, extra))


def udp_request(k, method, ruri, headers=None, route=None, timeout=3.0,
                address=None, body_from=None):
    """Send one request to kamailio from a fresh address (an endpoint);
    returns (first line of the final reply, full reply text) or (None, None)."""
    addr = address or harness.next_address()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    port = s.getsockname()[1]
    callid = "ep-%f@%s" % (time.time(), addr)
    msg = endpoint_request(method, ruri, addr, port, callid, route=route,
                           headers=headers, from_user=body_from or "1001")
    text = final_reply(s, msg, (k.address, k.port), timeout)
    return (text.split("\r\n", 1)[0], text) if text else (None, None)


def final_reply(s, msg, dest, timeout):
    """send the request msg over the UDP socket s to dest, then close s;
    returns the text of the first final reply (provisional ones skipped) or
    None when none came within timeout"""
    s.settimeout(timeout)
    try:
        s.sendto(msg.encode(), dest)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = s.recvfrom(65535)[0].decode(errors="replace")
            if not text.startswith("SIP/2.0 1"):
                return text
    except socket.timeout:
        return None
    finally:
        s.close()
    return None


def send_raw(proto, bind_ip, data, dst_ip):
    """one datagram on a raw socket of IP protocol proto (its header,
    written by the caller, in data) from bind_ip; needs CAP_NET_RAW"""
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, proto)
    try:
        s.bind((bind_ip, 0))
        s.sendto(data, (dst_ip, 0))
    finally:
        s.close()


def forge_udp(src, dst, payload):
    """Send one UDP datagram with the source address AND port `src` without
    owning that port (the real peer keeps it): a raw socket bound to the
    source address (on loopback), UDP header written by hand, checksum 0
    (none, allowed over IPv4). Needs CAP_NET_RAW."""
    data = payload.encode() if isinstance(payload, str) else payload
    udp = struct.pack("!HHHH", src[1], dst[1], 8 + len(data), 0) + data
    send_raw(socket.IPPROTO_UDP, src[0], udp, dst[0])


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
