"""One scriptable SIP peer for the system tests: a SIP Server (or any SIP
endpoint) on its own address, over UDP, TCP or TLS, that answers requests
by rules, records every message it receives, and lets a test wait for a
message instead of sleeping.

    p = SipPeer("udp", rules={"OPTIONS": 503, "INVITE": (200, 0.3)})
    p.start()
    p.wait_requests("INVITE", count=2, timeout=3)

Answer rules: `rules` maps a method to a rule, "*" to every other method
(ACK is never answered).  A rule is
  - a status code (int): the reply is sent at once;
  - None: silence;
  - (code, delay_s): the reply is sent delay_s later (code None: silence);
  - a callable(n, msg) returning one of the above: asked once per Call-ID
    of that method (n: 0-based count of that method's distinct Call-IDs),
    its answer kept for the retransmissions.
Static rules are read at every message: a test changes them while the peer
runs (`p.answer("OPTIONS", None)`: the SIP Server goes silent).

Recorded: `messages`, every SIP message received (requests and replies) as
a `Msg` (tls_ua.SipMsg plus .time, .src, .conn, .new: first copy of its
Call-ID/CSeq); `other`, datagrams that are not SIP (on_other() sees them).
Stream transports also count `accepts` (peer addresses) and `handshakes`.

Replies copy Via, From, To (a To-tag added), Call-ID and CSeq; a reply to
INVITE copies the Record-Route and has Contact <sip:sips@address:port>.
Subclasses change the replies (build_reply), which messages are dropped
unseen (accept) or what is done with a request (on_request)."""

import collections
import itertools
import re
import socket
import ssl
import threading
import time

import harness
from tls_ua import (SipMsg, build, client_context, hostport, new_id,
                    take_message)

_seq = itertools.count(1)

IP_RECVTOS = getattr(socket, "IP_RECVTOS", 13)
IP_TOS = getattr(socket, "IP_TOS", 1)

# what is not SIP: empty or white space only (keep-alives, the transport
# check's CRLFCRLF); anything else is taken as a SIP message, however odd
# (what a proxy relays must be seen)
NOT_SIP = re.compile(r"^\s*$")


class Msg(SipMsg):
    """A received SIP message: .time (monotonic), .src (address, port),
    .conn (the stream it came on, None on UDP), .new (first copy), .tos
    (the IP TOS byte, with recv_tos)."""

    # a constructor that only assigns attributes, then a property: the same
    # shape as harness.Kamailio's and harness.SippResult's, nothing to share
    def __init__(self, text, src, conn=None):
        super().__init__(text)
        self.time = time.monotonic()
        self.src = src
        self.conn = conn
        self.new = True
        self.tos = None

    @property
    def call_id(self):
        return self.hdr("Call-ID") or ""


class SipPeer(threading.Thread):
    reason = "OK"       # reason phrase of the replies
    keep = None         # how many messages `messages` keeps (None: all)

    def __init__(self, transport="udp", address=None, port=5060, rules=None,
                 certs=None, reuseport=False, on_other=None, recv_tos=False):
        super().__init__(daemon=True)
        assert transport in ("udp", "tcp", "tls"), transport
        self.transport = transport
        self.address = address or harness.next_address()
        self.rules = {"*": 200}
        self.rules.update(rules or {})
        self.on_other_cb = on_other
        family = socket.AF_INET6 if ":" in self.address else socket.AF_INET
        stream = transport != "udp"
        self.sock = socket.socket(family, socket.SOCK_STREAM if stream
                                  else socket.SOCK_DGRAM)
        if stream:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuseport:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if recv_tos:        # each datagram's TOS byte in Msg.tos
            self.sock.setsockopt(socket.IPPROTO_IP, IP_RECVTOS, 1)
        self.sock.bind((self.address, port))
        self.port = self.sock.getsockname()[1]
        if stream:
            self.sock.listen(16)
        self.sock.settimeout(0.05)
        self.ctx = None
        if transport == "tls":
            self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            self.ctx.load_cert_chain(str(certs.server), str(certs.server_key))
        self.messages = ([] if self.keep is None
                         else collections.deque(maxlen=self.keep))
        self.other = 0
        self.errors = []    # requests on_request() failed on
        self.accepts = []
        self.handshakes = 0
        self.conns = []
        self.replies_sent = collections.Counter()   # method -> count
        self._decided = {}          # (method, call-id) -> rule's answer
        self._ncalls = collections.Counter()
        self._seen = collections.OrderedDict()  # (call-id, cseq) of requests
        self._out = {}              # dest -> our connection (stream)
        self._lock = threading.Condition()
        self._send_lock = threading.Lock()
        self._quit = threading.Event()

    # ------------------------------------------------------------ naming
    @property
    def uri(self):
        t = "" if self.transport == "udp" else ";transport=" + self.transport
        return "sip:%s%s" % (hostport(self.address, self.port), t)

    def own_contact(self):
        t = "" if self.transport == "udp" else ";transport=" + self.transport
        return "<sip:sips@%s%s>" % (hostport(self.address, self.port), t)

    def answer(self, method, rule):
        """set the rule of method ("*": every method without its own)"""
        self.rules[method] = rule

    # ------------------------------------------------------------ reading
    def run(self):
        while not self._quit.is_set():
            try:
                if self.transport == "udp":
                    data, anc, _, src = self.sock.recvmsg(
                        65535, socket.CMSG_SPACE(4))
                else:
                    raw, src = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            if self.transport == "udp":
                self._datagram(data, src, anc)
            else:
                with self._lock:
                    self.accepts.append(src)
                    self._lock.notify_all()
                threading.Thread(target=self._serve, args=(raw, src),
                                 daemon=True).start()

    def _datagram(self, data, src, anc=()):
        text = data.decode(errors="replace")
        if NOT_SIP.match(text):
            with self._lock:
                self.other += 1
            self.on_other(data, src, self.sock)
            return
        msg = Msg(text, src)
        for level, kind, val in anc:
            if level == socket.IPPROTO_IP and kind == IP_TOS and val:
                msg.tos = val[0]
        self._message(msg)

    def _serve(self, raw, src):
        conn = raw
        if self.ctx is not None:
            raw.settimeout(5)
            try:
                conn = self.ctx.wrap_socket(raw, server_side=True)
            except (OSError, ssl.SSLError):
                raw.close()
                return
            with self._lock:
                self.handshakes += 1
        conn.settimeout(0.1)
        with self._lock:
            self.conns.append(conn)
        self._read(conn, src)

    def _read(self, conn, src):
        buf = b""
        while not self._quit.is_set():
            text, buf = take_message(buf)
            if text is not None:
                self._message(Msg(text, src, conn))
                continue
            try:
                data = conn.recv(65535)
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                break
            if not data:
                break
            buf += data
        try:
            conn.close()
        except OSError:
            pass

    def _message(self, msg):
        if not self.accept(msg):
            return
        with self._lock:
            if not msg.is_reply:
                key = (msg.call_id, msg.hdr("CSeq"))
                msg.new = key not in self._seen
                self._seen[key] = True
                if len(self._seen) > 20000:     # long runs (bench/soak)
                    self._seen.popitem(last=False)
            self.messages.append(msg)
            self.record(msg)
            self._lock.notify_all()
        if not msg.is_reply:
            try:
                self.on_request(msg)
            except Exception as e:      # a malformed request: keep reading
                with self._lock:
                    self.errors.append("%s: %r" % (msg.first, e))

    # ------------------------------------------------------------ hooks
    def accept(self, msg):
        """False: the message is dropped unseen (not recorded)"""
        return True

    def record(self, msg):
        """called under the lock for every message recorded"""

    def on_other(self, data, src, sock):
        if self.on_other_cb:
            self.on_other_cb(data, src, sock)

    def on_request(self, msg):
        """answer by the rules"""
        if msg.method == "ACK":
            return
        code, delay = self.decide(msg)
        if code is None:
            return
        reply = self.build_reply(msg, code)
        if delay:
            threading.Timer(delay, self.send_to, (reply, msg, msg.method)
                            ).start()
        else:
            self.send_to(reply, msg, msg.method)

    def decide(self, msg):
        rule = self.rules.get(msg.method, self.rules.get("*"))
        if callable(rule):
            key = (msg.method, msg.call_id)
            with self._lock:
                if key not in self._decided:
                    n = self._ncalls[msg.method]
                    self._ncalls[msg.method] += 1
                    self._decided[key] = rule(n, msg)
                rule = self._decided[key]
        if isinstance(rule, tuple):
            return rule
        return rule, 0

    def build_reply(self, msg, code, reason=None):
        out = ["SIP/2.0 %d %s" % (code, reason or self.reason)]
        out += ["Via: " + v for v in msg.hdrs("Via")]
        out += ["From: " + v for v in msg.hdrs("From")]
        out += ["To: " + (v if ";tag=" in v else v + ";tag=peer%d" % self.port)
                for v in msg.hdrs("To")]
        out += ["Call-ID: " + v for v in msg.hdrs("Call-ID")]
        out += ["CSeq: " + v for v in msg.hdrs("CSeq")]
        if msg.method == "INVITE":
            out += ["Record-Route: " + v for v in msg.hdrs("Record-Route")]
            out.append("Contact: " + self.own_contact())
        out += ["Content-Length: 0", "", ""]
        return "\r\n".join(out).encode()

    # ------------------------------------------------------------ sending
    def send_to(self, data, msg, method=None):
        """send data back where msg came from (its connection on a
        stream); False when it could not be sent"""
        if isinstance(data, str):
            data = data.encode()
        try:
            if msg.conn is None:
                self.sock.sendto(data, msg.src)
            else:
                with self._send_lock:
                    msg.conn.sendall(data)
        except (OSError, ssl.SSLError):
            return False
        if method:
            with self._lock:
                self.replies_sent[method] += 1
        return True

    def send(self, data, dest):
        """send data to dest=(address, port): from the peer's own socket on
        UDP, on the peer's connection to dest on a stream (opened once)"""
        if isinstance(data, str):
            data = data.encode()
        if self.transport == "udp":
            self.sock.sendto(data, dest)
            return
        with self._lock:
            conn = self._out.get(dest)
        if conn is None:
            raw = socket.create_connection(dest, timeout=5,
                                           source_address=(self.address, 0))
            conn = raw
            if self.transport == "tls":
                conn = client_context().wrap_socket(raw)
            conn.settimeout(0.1)
            with self._lock:
                self._out[dest] = conn
                self.conns.append(conn)
            threading.Thread(target=self._read, args=(conn, dest),
                             daemon=True).start()
        with self._send_lock:
            conn.sendall(data)

    def send_request(self, dest, method, ruri, headers=None, wait=2.0,
                     full=False):
        """Send a request from this peer (its Via, Contact and From); returns
        the final reply (first line, or all of it with full=True) or None."""
        callid = "peer-%d-%f@%s" % (next(_seq), time.time(), self.address)
        extra = "".join("%s: %s\r\n" % kv for kv in (headers or {}).items())
        msg = ("%s %s SIP/2.0\r\n"
               "Via: SIP/2.0/%s %s;branch=z9hG4bK%d\r\n"
               "From: <sip:sipserver@%s>;tag=p1\r\n"
               "To: <%s>\r\n"
               "Call-ID: %s\r\n"
               "CSeq: 1 %s\r\n"
               "Contact: %s\r\n"
               "Max-Forwards: 70\r\n%s"
               "Content-Length: 0\r\n\r\n"
               % (method, ruri, self.transport.upper(),
                  hostport(self.address, self.port), int(time.time() * 1e6),
                  self.address, ruri, callid, method, self.own_contact(), extra))
        self.send(msg, dest)
        got = self.wait_for(lambda m: m.is_reply and m.call_id == callid
                            and m.status >= 200, timeout=wait, fail=False)
        if not got:
            return None
        return got[0].text if full else got[0].first

    # ------------------------------------------------------------ waiting
    def select(self, pred=None):
        with self._lock:
            return [m for m in self.messages if pred is None or pred(m)]

    def requests_of(self, method=None, new=False):
        """requests received (of method; only first copies with new=True)"""
        return self.select(lambda m: not m.is_reply
                           and (method is None or m.method == method)
                           and (m.new or not new))

    def wait_for(self, pred, count=1, timeout=5.0, what=None, fail=True):
        """Block until `count` recorded messages satisfy pred; returns them.
        On timeout: AssertionError (fail=True) or the ones there are."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                got = [m for m in self.messages if pred(m)]
                left = deadline - time.monotonic()
                if len(got) >= count or left <= 0:
                    break
                self._lock.wait(min(left, 0.1))
        if len(got) < count and fail:
            raise AssertionError(
                "%s: %s: %d of %d within %.1fs (received: %s)"
                % (self.uri, what or "messages", len(got), count, timeout,
                   [m.first for m in list(self.messages)[-10:]]))
        return got

    def wait_accept(self, timeout):
        """the peer address of the first connection accepted (within
        timeout), or None"""
        deadline = time.monotonic() + timeout
        with self._lock:
            while not self.accepts and time.monotonic() < deadline:
                self._lock.wait(max(0.0, min(0.1, deadline -
                                             time.monotonic())))
            return self.accepts[0] if self.accepts else None

    def wait_requests(self, method, count=1, timeout=5.0, new=False):
        return self.wait_for(lambda m: not m.is_reply and m.method == method
                             and (m.new or not new), count, timeout,
                             what="%s requests" % method)

    # ------------------------------------------------------------ the end
    def stop(self):
        """the process is gone: port closed, connections reset"""
        if self._quit.is_set():
            return
        self._quit.set()
        if self.transport != "udp":
            self.sock.close()       # refuse new connections at once
        if self.is_alive():
            self.join(timeout=2)
        self.sock.close()
        with self._lock:
            conns = list(self.conns)
        for c in conns:
            try:
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            try:
                c.close()
            except OSError:
                pass



class UdpUA(SipPeer):
    """A SIP Server (registrar, caller) or any UDP peer on ip:port that
    answers nothing by itself: the test takes each message in turn (recv)
    and sends exactly what it means (tls_ua.UdpUA is this class)."""

    def __init__(self, ip, port=5060):
        super().__init__("udp", address=ip, port=port, rules={"*": None})
        self._next = 0      # index in messages of what recv() looks at next
        self.start()

    @property
    def ip(self):
        return self.address

    @property
    def received(self):
        return self.select()

    def via(self, branch=None):
        return "SIP/2.0/UDP %s:%d;branch=z9hG4bK%s;rport" % (
            self.address, self.port, branch or new_id("b"))

    def recv(self, timeout=5.0, want=None):
        """the next message (the next one for which want(msg) is true; the
        ones passed over are not returned again)"""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                while self._next < len(self.messages):
                    msg = self.messages[self._next]
                    self._next += 1
                    if want is None or want(msg):
                        return msg
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError("%s:%d: no SIP message within %.1fs"
                                       % (self.address, self.port, timeout))
                self._lock.wait(min(left, 0.1))

    def nothing(self, timeout=1.0, want=None):
        """True when no (wanted) message arrives within timeout"""
        try:
            self.recv(timeout, want)
            return False
        except TimeoutError:
            return True

    def invite(self, ruri, proxy, to_user="1001", call_id=None, extra=()):
        call_id = call_id or new_id("inv")
        me = "%s:%d" % (self.address, self.port)
        hs = [("Via", self.via()), ("Max-Forwards", "70"),
              ("From", "<sip:sipserver@%s>;tag=%s" % (me, new_id("t"))),
              ("To", "<sip:%s@%s>" % (to_user, self.address)),
              ("Call-ID", call_id), ("CSeq", "1 INVITE"),
              ("Contact", "<sip:sipserver@%s>" % me)]
        hs += list(extra)
        text = build("INVITE %s SIP/2.0" % ruri, hs)
        self.send(text, proxy)
        return SipMsg(text)

    def close(self):
        self.stop()


def wait_until(pred, timeout=5.0, what="condition", step=0.02):
    """Poll pred() every `step` seconds until it returns a true value, which
    is returned; AssertionError after timeout (`what`: a text, or a callable
    giving one, e.g. the state last seen)."""
    deadline = time.monotonic() + timeout
    while True:
        value = pred()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("%s not reached within %.1fs" % (
                what() if callable(what) else what, timeout))
        time.sleep(step)
