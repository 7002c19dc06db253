"""A UDP user agent that reaches a proxy pool the way RFC 3263 says: the
host of the next hop (the first Route, else the Request-URI) is resolved to
a list of addresses, tried in order; the next one is tried after an ICMP
error (port unreachable: the proxy is gone) or a timeout.

Resolution is a static table the test owns (`Resolver`), not DNS: the
proxies under test never resolve the pool's name (dns=no; the name is their
alias), so what a DNS server would add is a test of this file's DNS client,
not of the proxies.  The table plays the A records of the pool's FQDN, in
the order a resolver would return them.

Each request goes out from a fresh socket connect()ed to the address tried
(Via names it, with rport), so the kernel reports the ICMP error of that
address to it; the UA's own socket (its Contact) takes incoming requests and
answers them: 200 to INVITE (copying Record-Route, Contact = itself), BYE,
OPTIONS, REGISTER (echoing the Contacts) and anything else."""

import re
import socket
import threading
import time

from sip_peer import SipPeer
from tls_ua import SipMsg, build, new_id, response, uri_of


class Resolver:
    """name -> [address, ...] (A records); an IP literal is itself"""

    def __init__(self, table=None):
        self.table = dict(table or {})

    def __call__(self, host):
        return list(self.table.get(host.lower(), [host]))


def uri_hostport(uri):
    """(host, port or None, transport) of a SIP URI"""
    m = re.match(r"sips?:(?:[^@;>]*@)?([^:;>]+)(?::(\d+))?([^>]*)", uri)
    if not m:
        raise ValueError("not a SIP URI: %r" % uri)
    t = re.search(r";transport=([a-z]+)", m.group(3), re.I)
    return (m.group(1), int(m.group(2)) if m.group(2) else None,
            t.group(1).lower() if t else "udp")


def record_routes(msg):
    """every Record-Route URI of msg, top first"""
    out = []
    for v in msg.hdrs("Record-Route"):
        out += re.findall(r"<([^>]*)>", v)
    return out


class Dialog:
    def __init__(self, call_id, local_uri, local_tag, remote_uri, remote_tag,
                 remote_target, route_set, cseq=1):
        self.call_id = call_id
        self.local_uri = local_uri
        self.local_tag = local_tag
        self.remote_uri = remote_uri
        self.remote_tag = remote_tag
        self.remote_target = remote_target
        self.route_set = list(route_set)
        self.cseq = cseq


class Attempt:
    """one try of a request at one address"""

    def __init__(self, addr, outcome):
        self.addr = addr        # (ip, port)
        self.outcome = outcome  # "reply", "icmp", "timeout", "sent"

    def __repr__(self):
        return "%s:%d %s" % (self.addr[0], self.addr[1], self.outcome)


class UAPeer(SipPeer):
    """What PoolUA (UDP) and TcpUA (TCP) share: a sip_peer.SipPeer that
    answers 200 to every request but ACK (INVITE: Record-Route copied,
    Contact = itself, a UAS Dialog kept in `dialogs`; REGISTER: its
    Contacts echoed) and finds the requests of a call."""

    def __init__(self, transport, address, port, user, resolver, timeout,
                 **kw):
        super().__init__(transport, address=address, port=port, **kw)
        self.user = user
        self.resolver = resolver or Resolver()
        self.timeout = timeout
        self.dialogs = {}       # call-id -> Dialog (as UAS)

    @property
    def contact(self):
        t = "" if self.transport == "udp" else ";transport=" + self.transport
        return "sip:%s@%s:%d%s" % (self.user, self.address, self.port, t)

    @property
    def requests(self):
        """every request received (SipMsg with .src), oldest first"""
        return self.requests_of()

    def on_request(self, msg):
        m = msg.method
        if m == "ACK":
            return
        to_tag = None
        extra = []
        contact = None
        if m == "INVITE":
            contact = "<%s>" % self.contact
            if ";tag=" not in msg.hdr("To"):
                to_tag = new_id("uas")
                self._new_uas_dialog(msg, to_tag)
        elif m == "REGISTER":
            extra = [("Contact", c) for c in msg.contacts()]
            to_tag = new_id("reg")
        elif ";tag=" not in (msg.hdr("To") or ""):
            to_tag = new_id("t")
        self.send_to(response(msg, 200, "OK", to_tag=to_tag, contact=contact,
                              extra=extra, record_route=m == "INVITE"), msg,
                     m)

    def _new_uas_dialog(self, inv, to_tag):
        frm = inv.hdr("From")
        d = Dialog(inv.hdr("Call-ID"), uri_of(inv.hdr("To")), to_tag,
                   uri_of(frm), re.search(r";tag=([^;\s]+)", frm).group(1),
                   uri_of(inv.contacts()[0]), record_routes(inv), cseq=100)
        with self._lock:
            self.dialogs[d.call_id] = d

    def _match(self, method, call_id, cseq):
        return lambda r: (not r.is_reply and r.method == method
                          and (call_id is None or r.call_id == call_id)
                          and (cseq is None
                               or int(r.hdr("CSeq").split()[0]) == cseq))

    def got(self, method, call_id, cseq=None):
        """requests of method in call call_id (None: any) received so far"""
        return self.select(self._match(method, call_id, cseq))

    def wait_got(self, method, call_id, cseq=None, timeout=3.0):
        """got(), once there is one (or [] after timeout)"""
        return self.wait_for(self._match(method, call_id, cseq),
                             timeout=timeout, fail=False)

    def _final_reply(self, call_id, cseq, timeout, conn=None):
        """the first final reply in call call_id to CSeq number cseq (on
        connection conn) received within timeout, or None"""
        got = self.wait_for(
            lambda r: r.is_reply and r.status >= 200 and r.call_id == call_id
            and int(r.hdr("CSeq").split()[0]) == cseq
            and (conn is None or r.conn is conn), timeout=timeout, fail=False)
        return got[0] if got else None


class PoolUA(UAPeer):
    def __init__(self, address, port=5060, user="ua", resolver=None,
                 timeout=2.0):
        # every request leaves from the UA's own port, as a SIP Server's do
        # (the proxy knows a pool member by its address and port): one
        # connected socket per try shares the port (SO_REUSEPORT) and gets
        # that peer's replies and ICMP errors
        super().__init__("udp", address, port, user, resolver, timeout,
                         reuseport=True)

    @property
    def responses(self):
        """replies received on the own socket"""
        return self.select(lambda m: m.is_reply)

    # ------------------------------------------------------------ outgoing
    def targets(self, uri):
        host, port, transport = uri_hostport(uri)
        assert transport == "udp", "this UA speaks UDP only: %s" % uri
        return [(a, port or 5060) for a in self.resolver(host)]

    def send(self, first, headers, next_hop, expect_reply=True,
             body=""):
        """Send a request built from first/headers (Via is added per try)
        to the addresses of next_hop (a URI), in order, until one answers
        with a final reply.  Returns (final reply or None, [Attempt])."""
        attempts = []
        for addr in self.targets(next_hop):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
                s.bind((self.address, self.port))
                s.connect(addr)
                via = "SIP/2.0/UDP %s:%d;branch=z9hG4bK%s;rport" % (
                    self.address, s.getsockname()[1], new_id("b"))
                s.send(build(first, [("Via", via)] + headers, body).encode())
                reply, outcome = self._await(s, expect_reply)
            finally:
                s.close()
            attempts.append(Attempt(addr, outcome))
            if outcome in ("reply", "sent"):
                return reply, attempts
        return None, attempts

    def _await(self, s, expect_reply):
        # no reply expected (ACK): only an ICMP error says it was lost
        deadline = time.monotonic() + (self.timeout if expect_reply else 0.3)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return None, "timeout" if expect_reply else "sent"
            s.settimeout(left)
            try:
                data = s.recv(65535)
            except ConnectionRefusedError:
                return None, "icmp"
            except socket.timeout:
                continue
            msg = SipMsg(data.decode(errors="replace"))
            if msg.is_reply and msg.status >= 200:
                return msg, "reply"

    def _send_own(self, first, headers, next_hop, call_id):
        """send from the UA's own socket (a SIP Server's requests come from
        its member address) to the first address of next_hop; the reply
        arrives on that socket"""
        addr = self.targets(next_hop)[0]
        via = "SIP/2.0/UDP %s:%d;branch=z9hG4bK%s;rport" % (
            self.address, self.port, new_id("b"))
        self.sock.sendto(build(first, [("Via", via)] + headers).encode(), addr)
        reply = self._final_reply(call_id, 1, self.timeout)
        return reply, [Attempt(addr, "reply" if reply else "timeout")]

    def invite(self, ruri, proxy_uri, to_user="2000", own_socket=False):
        """An initial INVITE through proxy_uri (outbound proxy); on 2xx the
        ACK goes along the dialog's route set.  Returns (Dialog or None,
        the final reply, attempts)."""
        call_id = new_id("call") + "@" + self.address
        tag = new_id("uac")
        local = "sip:%s@%s" % (self.user, self.address)
        remote = "sip:%s@pool" % to_user
        hs = [("Max-Forwards", "70"), ("From", "<%s>;tag=%s" % (local, tag)),
              ("To", "<%s>" % remote), ("Call-ID", call_id),
              ("CSeq", "1 INVITE"), ("Contact", "<%s>" % self.contact)]
        if own_socket:
            reply, att = self._send_own("INVITE %s SIP/2.0" % ruri, hs,
                                        proxy_uri, call_id)
        else:
            reply, att = self.send("INVITE %s SIP/2.0" % ruri, hs, proxy_uri)
        if reply is None or reply.status >= 300:
            return None, reply, att
        d = Dialog(call_id, local, tag, remote,
                   re.search(r";tag=([^;\s]+)", reply.hdr("To")).group(1),
                   uri_of(reply.contacts()[0]),
                   list(reversed(record_routes(reply))))
        self.ack(d, 1)
        return d, reply, att

    def _in_dialog(self, d, method, cseq):
        hs = [("Max-Forwards", "70")]
        hs += [("Route", "<%s>" % r) for r in d.route_set]
        hs += [("From", "<%s>;tag=%s" % (d.local_uri, d.local_tag)),
               ("To", "<%s>;tag=%s" % (d.remote_uri, d.remote_tag)),
               ("Call-ID", d.call_id), ("CSeq", "%d %s" % (cseq, method)),
               ("Contact", "<%s>" % self.contact)]
        hop = d.route_set[0] if d.route_set else d.remote_target
        return "%s %s SIP/2.0" % (method, d.remote_target), hs, hop

    def ack(self, d, cseq):
        first, hs, hop = self._in_dialog(d, "ACK", cseq)
        return self.send(first, hs, hop, expect_reply=False)

    def request(self, d, method):
        """an in-dialog request (BYE, re-INVITE + its ACK on 2xx);
        returns (final reply or None, attempts)"""
        d.cseq += 1
        first, hs, hop = self._in_dialog(d, method, d.cseq)
        reply, att = self.send(first, hs, hop)
        if method == "INVITE" and reply is not None and reply.status < 300:
            self.ack(d, d.cseq)
        return reply, att

class TcpUA(UAPeer):
    """A gateway on TCP: listens on address:port (every connection it
    accepts is read), answers requests as PoolUA does, and sends its own
    requests on a new connection to the addresses of the next hop, in
    order, until one accepts (a refused connection: the proxy is gone)."""

    def __init__(self, address, port=5060, user="gw", resolver=None,
                 timeout=2.0):
        super().__init__("tcp", address, port, user, resolver, timeout)

    def request(self, d, method):
        """an in-dialog request over a new connection to the first Route's
        addresses; returns (final reply or None, [Attempt])"""
        d.cseq += 1
        host, port, transport = uri_hostport(d.route_set[0])
        assert transport == "tcp", d.route_set[0]
        attempts = []
        for ip in self.resolver(host):
            addr = (ip, port or 5060)
            try:
                c = socket.create_connection(addr, timeout=self.timeout,
                                             source_address=(self.address, 0))
            except ConnectionRefusedError:
                attempts.append(Attempt(addr, "refused"))
                continue
            except socket.timeout:
                attempts.append(Attempt(addr, "timeout"))
                continue
            c.settimeout(0.1)
            with self._lock:
                self.conns.append(c)
            threading.Thread(target=self._read, args=(c, addr),
                             daemon=True).start()
            via = "SIP/2.0/TCP %s:%d;branch=z9hG4bK%s;rport" % (
                self.address, c.getsockname()[1], new_id("b"))
            hs = [("Via", via), ("Max-Forwards", "70")]
            hs += [("Route", "<%s>" % r) for r in d.route_set]
            hs += [("From", "<%s>;tag=%s" % (d.local_uri, d.local_tag)),
                   ("To", "<%s>;tag=%s" % (d.remote_uri, d.remote_tag)),
                   ("Call-ID", d.call_id),
                   ("CSeq", "%d %s" % (d.cseq, method)),
                   ("Contact", "<%s>" % self.contact)]
            c.sendall(build("%s %s SIP/2.0" % (method, d.remote_target),
                            hs).encode())
            reply = self._final_reply(d.call_id, d.cseq, self.timeout, c)
            if reply is not None:
                attempts.append(Attempt(addr, "reply"))
                return reply, attempts
            attempts.append(Attempt(addr, "timeout"))
        return None, attempts
