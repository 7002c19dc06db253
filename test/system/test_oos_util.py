"""Helpers for the genesys_oos system tests (no tests in this file): a
small kamailio.cfg, genesys_oos.list over JSON-RPC, and the probe
responder (a sip_peer.SipPeer).

The responder is a real socket peer (like SIPp, but its answers can be
chosen per probe): it answers, drops or delays each OPTIONS probe as a test
policy decides, and records when and from where every probe arrived.
"""

import re
import socket
import time

import harness
from cfgbuild import Define, kamailio_cfg, modparam
from sip_peer import SipPeer

# after the common header: {params}: modparam lines; {routes}: more routes
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
{routes}"""

# http=True: JSON-RPC over HTTP on the TCP listener (jsonrpcs has delayed
# replies there, unlike ctl)
HTTP_PARAMS = 'modparam("jsonrpcs", "transport", 1)'
HTTP_ROUTES = """
event_route[xhttp:request] {
	jsonrpc_dispatch();
	exit;
}
"""


def make_cfg(params, listen=(), fr_timer=30000, tls=False, http=False):
    """params: {name: value} or [(name, value)] (repeatable names); tls:
    the tls module (loaded before genesys_oos, its config in the TLS_CFG
    define) and a LISTEN_TLS socket; http: JSON-RPC over HTTP on the TCP
    listener (xhttp + jsonrpcs)."""
    items = params.items() if isinstance(params, dict) else params
    lines = [modparam("genesys_oos", name, value) for name, value in items]
    if tls:
        listen = tuple(listen) + ("LISTEN_TLS",)
        lines.insert(0, modparam("tls", "config", Define("TLS_CFG")))
    if http:
        lines.insert(0, HTTP_PARAMS)
    return kamailio_cfg(
        children=2, tcp_children=2,
        listen=("LISTEN_UDP", "LISTEN_TCP") + tuple(listen),
        globals_='log_prefix="{$mt $ci} "' + ("\nenable_tls=yes" if tls else ""),
        modules=("cfg_rpc", "kex", "tm", "sl", "pv", "xlog", "textops")
        + (("tls",) if tls else ()) + ("genesys_oos",)
        + (("xhttp", "jsonrpcs") if http else ()),
        body=ROUTES.format(params="\n".join(lines), fr_timer=fr_timer,
                           routes=HTTP_ROUTES if http else ""))


def parse_rpc_structs(text):
    """kamcmd output of structs -> [dict].  Only for genesys_oos.probe,
    which must go through ctl: over jsonrpcs' datagram socket (rpc_json)
    Kamailio logs an ERROR for the delayed reply it offers but only has on
    HTTP."""
    out, cur = [], None
    for line in text.splitlines():
        s = line.strip()
        if s == "{":
            cur = {}
        elif s == "}":
            if cur is not None:
                out.append(cur)
            cur = None
        elif cur is not None and ":" in s:
            key, val = s.split(":", 1)
            cur[key.strip()] = val.strip()
    return out


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


PROBE_LOG = (r"genesys_oos\.probe of %s: probe %d result (\S+) \(reason (\S+), "
             r"code (-?\d+), rtt (-?\d+) ms\), state (\S+)")


def rpc_probe(k, uri, *sock, timeout=10.0, step=0.02):
    """kamcmd genesys_oos.probe <uri> [socket]. ctl has no delayed replies:
    the command answers at once with the probe's number, "result: pending";
    the result then shows in genesys_oos.list (last_probe reaches that
    number) and in a log line. Waits for both; returns (result, seconds
    from the request to the result) with result = {"probe", "result",
    "reason", "code", "rtt_ms", "state"} (all strings, as kamcmd prints
    them)."""
    t0 = time.monotonic()
    out = k.rpc("genesys_oos.probe", uri, *sock)
    answered = time.monotonic() - t0
    rows = parse_rpc_structs(out)
    assert len(rows) == 1 and rows[0]["result"] == "pending", out
    assert rows[0]["uri"] == uri, out
    # never blocked on the probe (was up to 2 * oos_timeout + 1 s)
    assert answered < 1.0, "genesys_oos.probe took %.2fs to answer" % answered
    seq = int(rows[0]["probe"])
    rx = re.compile(PROBE_LOG % (re.escape(uri), seq))
    while True:
        m = rx.search(k.log_text())
        if m:
            took = time.monotonic() - t0
            break
        assert time.monotonic() - t0 < timeout, \
            "no result of probe %d of %s within %.1fs: %s" % (
                seq, uri, timeout, k.log_text()[-2000:])
        time.sleep(step)
    # the same result in genesys_oos.list
    row = target(k, uri)
    assert int(row["last_probe"]) >= seq, (seq, row)
    if int(row["last_probe"]) == seq:
        assert (row["last_probe_result"], row["last_probe_reason"]) == \
            m.group(1, 2), (m.group(0), row)
    return dict(zip(("probe", "result", "reason", "code", "rtt_ms", "state"),
                    (str(seq),) + m.groups())), took


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


class Responder(SipPeer):
    """UDP SIP peer on (address, port) that answers OPTIONS probes only
    (sip_peer.SipPeer).  policy(n, src) -> (code, delay_s) decides per
    probe (n = 0-based index of distinct Call-IDs); code None drops the
    probe and all its retransmissions.  on_other(data, src, sock) is called
    for any datagram that is not SIP (e.g. the transport check's CRLFCRLF).
    `probes`: [(monotonic time, call-id, src)] of every probe's first copy,
    `requests`: their text."""

    reason = "Test Reply"

    def __init__(self, address=None, port=5060, policy=None, on_other=None):
        super().__init__("udp", address=address, port=port, on_other=on_other,
                         rules={"*": None})
        self.policy = policy or (lambda n, src: (200, 0))

    # a property whose setter also updates the answering rules, as
    # ha_util.Peer.invite_code: the same shape, other attributes and rules
    @property
    def policy(self):
        return self._policy

    @policy.setter
    def policy(self, policy):
        """a new policy applies from the next probe on"""
        self._policy = policy
        self.answer("OPTIONS", lambda n, m: policy(n, m.src))

    def _probes(self):
        return self.requests_of("OPTIONS", new=True)

    @property
    def probes(self):
        return [(m.time, m.call_id, m.src) for m in self._probes()]

    @property
    def requests(self):
        return [m.text for m in self._probes()]

    def wait_probes(self, count, timeout):
        """the first copies of `count` probes, once they have arrived"""
        return self.wait_for(lambda m: m.new and m.method == "OPTIONS"
                             and not m.is_reply, count, timeout,
                             what="OPTIONS probes")
