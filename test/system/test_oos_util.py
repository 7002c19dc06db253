"""Helpers for the genesys_oos system tests (no tests in this file): a
small kamailio.cfg, genesys_oos.list over JSON-RPC, and a scriptable UDP SIP
responder.

The responder is a real socket peer (like SIPp, but its answers can be
chosen per probe): it answers, drops or delays each OPTIONS probe as a test
policy decides, and records when and from where every probe arrived.
"""

import socket
import threading
import time

import harness
from cfgbuild import Define, kamailio_cfg, modparam

# after the common header: {params}: modparam lines
ROUTES = """modparam("tm", "fr_timer", {fr_timer})
{params}

request_route {{
	if (is_method("MESSAGE")) {{
		if ($hdr(X-Report) == "failure") {{
			oos_report_failure("$hdr(X-Target)");
		}} else if ($hdr(X-Report) == "alive") {{
			oos_report_alive("$hdr(X-Target)");
		}} else {{
			oos_is_active("$hdr(X-Target)");
		}}
		$var(rc) = $rc;
		sl_send_reply("200", "rc=$var(rc)");
		exit;
	}}
	sl_send_reply("404", "Not here");
}}

event_route[genesys-oos:target-up] {{
	xlog("L_NOTICE", "OOS-EVENT up uri=$goos(uri) old=$goos(old_state) state=$goos(state) reason=$goos(reason) code=$goos(code)\\n");
}}
event_route[genesys-oos:target-inactive] {{
	xlog("L_NOTICE", "OOS-EVENT inactive uri=$goos(uri) old=$goos(old_state) state=$goos(state) reason=$goos(reason) code=$goos(code)\\n");
}}
event_route[genesys-oos:target-down] {{
	xlog("L_NOTICE", "OOS-EVENT down uri=$goos(uri) old=$goos(old_state) state=$goos(state) reason=$goos(reason) code=$goos(code)\\n");
}}
"""


def make_cfg(params, listen=(), fr_timer=30000, tls=False):
    """params: {name: value} or [(name, value)] (repeatable names); tls:
    the tls module (loaded before genesys_oos, its config in the TLS_CFG
    define) and a LISTEN_TLS socket."""
    items = params.items() if isinstance(params, dict) else params
    lines = [modparam("genesys_oos", name, value) for name, value in items]
    if tls:
        listen = tuple(listen) + ("LISTEN_TLS",)
        lines.insert(0, modparam("tls", "config", Define("TLS_CFG")))
    return kamailio_cfg(
        children=2, tcp_children=2,
        listen=("LISTEN_UDP", "LISTEN_TCP") + tuple(listen),
        globals_='log_prefix="{$mt $ci} "' + ("\nenable_tls=yes" if tls else ""),
        modules=("cfg_rpc", "kex", "tm", "sl", "pv", "xlog", "textops")
        + (("tls",) if tls else ()) + ("genesys_oos",),
        body=ROUTES.format(params="\n".join(lines), fr_timer=fr_timer))


def oos_list(k):
    """genesys_oos.list (JSON-RPC): one dict per target, numbers as numbers"""
    return k.rpc_json("genesys_oos.list")


def target(k, uri, socket_name=None):
    for t in oos_list(k):
        if t["uri"] == uri and (socket_name is None or t["socket"] == socket_name):
            return t
    raise AssertionError("target %s not in genesys_oos.list" % uri)


def wait_state(k, uri, state, timeout, socket_name=None, step=0.02):
    """Poll genesys_oos.list until the target is in `state`; returns the
    seconds waited and the target's row."""
    t0 = time.monotonic()
    while True:
        row = target(k, uri, socket_name)
        if row["state"] == state:
            return time.monotonic() - t0, row
        if time.monotonic() - t0 > timeout:
            raise AssertionError("target %s not %s within %.1fs: %s"
                                 % (uri, state, timeout, row))
        time.sleep(step)


def send_message(kamailio, headers, timeout=3.0):
    """Send a MESSAGE to kamailio from a fresh address; returns the reply's
    status line."""
    addr = harness.next_address()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    port = s.getsockname()[1]
    callid = "oos-%f@%s" % (time.time(), addr)
    extra = "".join("%s: %s\r\n" % kv for kv in headers.items())
    msg = ("MESSAGE sip:oos@%s:%d SIP/2.0\r\n"
           "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%d;rport\r\n"
           "From: <sip:test@%s>;tag=t1\r\n"
           "To: <sip:oos@%s>\r\n"
           "Call-ID: %s\r\n"
           "CSeq: 1 MESSAGE\r\n"
           "Max-Forwards: 70\r\n"
           "%s"
           "Content-Length: 0\r\n\r\n"
           % (kamailio.address, kamailio.port, addr, port, int(time.time() * 1000),
              addr, kamailio.address, callid, extra))
    s.settimeout(timeout)
    try:
        s.sendto(msg.encode(), (kamailio.address, kamailio.port))
        data, _ = s.recvfrom(65535)
    finally:
        s.close()
    return data.decode(errors="replace").split("\r\n", 1)[0]


def _header(lines, *names):
    names = tuple(n.lower() + ":" for n in names)
    return [l for l in lines if l.lower().startswith(names)]


class Responder(threading.Thread):
    """UDP SIP peer on (address, port).  policy(n, src) -> (code, delay_s)
    decides per probe (n = 0-based index of distinct Call-IDs); code None
    drops the probe and all its retransmissions.  on_other(data, src, sock)
    is called for any other datagram (e.g. the transport check's CRLFCRLF)."""

    def __init__(self, address=None, port=5060, policy=None, on_other=None):
        super().__init__(daemon=True)
        self.address = address or harness.next_address()
        self.port = port
        self.policy = policy or (lambda n, src: (200, 0))
        self.on_other = on_other
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind((self.address, port))
        self.sock.settimeout(0.1)
        self.probes = []          # [(monotonic time, call-id, src)]
        self.decisions = {}       # call-id -> (code, delay)
        self.requests = []        # first copy of every probe
        self.replies_sent = 0
        self._quit = threading.Event()
        self._lock = threading.Lock()

    @property
    def uri(self):
        return "sip:%s:%d" % (self.address, self.port)

    def run(self):
        while not self._quit.is_set():
            try:
                data, src = self.sock.recvfrom(65535)
            except socket.timeout:
                continue
            except OSError:
                break
            text = data.decode(errors="replace")
            if not text.startswith("OPTIONS "):
                if self.on_other:
                    self.on_other(data, src, self.sock)
                continue
            lines = text.split("\r\n")
            cid = _header(lines, "Call-ID", "i")
            cid = cid[0].split(":", 1)[1].strip() if cid else ""
            with self._lock:
                if cid not in self.decisions:
                    n = len(self.decisions)
                    self.decisions[cid] = self.policy(n, src)
                    self.probes.append((time.monotonic(), cid, src))
                    self.requests.append(text)
                code, delay = self.decisions[cid]
            if code is None:
                continue
            reply = self._reply(lines, code)
            if delay:
                threading.Timer(delay, self._send, (reply, src)).start()
            else:
                self._send(reply, src)

    def _send(self, reply, src):
        try:
            self.sock.sendto(reply, src)
            self.replies_sent += 1
        except OSError:
            pass

    @staticmethod
    def _reply(lines, code):
        out = ["SIP/2.0 %d Test Reply" % code]
        out += _header(lines, "Via", "v")
        out += _header(lines, "From", "f")
        out += [l + ";tag=resp" for l in _header(lines, "To", "t")]
        out += _header(lines, "Call-ID", "i")
        out += _header(lines, "CSeq")
        out += ["Content-Length: 0", "", ""]
        return "\r\n".join(out).encode()

    def stop(self):
        self._quit.set()
        self.join(timeout=2)
        self.sock.close()
