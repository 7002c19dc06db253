"""A small, fully controllable SIP user agent for the stickiness tests.

- `StreamUA`: a phone that opens ONE TLS (or TCP) connection to the proxy
  from its own loopback address and listens on no port at all: whatever
  reaches it must come over that connection.
- `UdpUA`: a SIP Server (registrar, caller) on a UDP socket (sip_peer.UdpUA).
- `Certs`: a CA, server and client certificates made with `openssl`.

Messages are plain text; `SipMsg` parses them.  Nothing here is a SIP stack:
tests build every message themselves, so they can send exactly what they
mean (including forged tokens and broken Contacts).
"""

import itertools
import random
import re
import select
import socket
import ssl
import subprocess
import time
from pathlib import Path

_seq = itertools.count(1)


def hostport(ip, port):
    """ip:port for SIP, with an IPv6 address in brackets"""
    return "[%s]:%d" % (ip, port) if ":" in ip else "%s:%d" % (ip, port)


def new_id(prefix="x"):
    return "%s%d%06d" % (prefix, next(_seq), random.randint(0, 999999))


class SipMsg:
    def __init__(self, text):
        self.text = text
        head, _, self.body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        self.first = lines[0]
        self.headers = []
        for ln in lines[1:]:
            if ln[:1] in (" ", "\t") and self.headers:
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + ln.strip())
                continue
            n, _, v = ln.partition(":")
            self.headers.append((n.strip(), v.strip()))

    @property
    def is_reply(self):
        return self.first.startswith("SIP/2.0 ")

    @property
    def status(self):
        return int(self.first.split()[1]) if self.is_reply else None

    @property
    def method(self):
        if self.is_reply:
            return self.hdr("CSeq").split()[1]
        return self.first.split()[0]

    @property
    def ruri(self):
        return None if self.is_reply else self.first.split()[1]

    _compact = {"v": "via", "f": "from", "t": "to", "i": "call-id",
                "m": "contact", "l": "content-length"}

    def hdrs(self, name):
        name = name.lower()
        return [v for n, v in self.headers
                if n.lower() == name or self._compact.get(n.lower()) == name]

    def hdr(self, name):
        h = self.hdrs(name)
        return h[0] if h else None

    def contacts(self):
        """every Contact value, split at commas outside <> and quotes"""
        out = []
        for v in self.hdrs("Contact"):
            out += split_list(v)
        return out

    def __repr__(self):
        return "SipMsg(%r)" % self.first


def split_list(v):
    out, cur, depth, q = [], "", 0, False
    for ch in v:
        if ch == '"':
            q = not q
        elif not q and ch == "<":
            depth += 1
        elif not q and ch == ">":
            depth -= 1
        if ch == "," and depth == 0 and not q:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    return out


def uri_of(contact):
    """the URI inside <> of a Contact/Route value (or the bare URI)"""
    m = re.search(r"<([^>]*)>", contact)
    return m.group(1) if m else contact.split(";")[0].strip()


def hdr_param(value, name):
    """a header parameter (after the >) of a Contact value"""
    rest = value.split(">", 1)[1] if ">" in value else value.split(";", 1)[-1]
    m = re.search(r"(?:^|;)\s*%s\s*=\s*([^;\s]+)" % re.escape(name), rest, re.I)
    return m.group(1) if m else None


def uri_param(uri, name):
    m = re.search(r";%s=([^;>?]*)" % re.escape(name), uri, re.I)
    return m.group(1) if m else None


def build(first, headers, body=""):
    lines = [first] + ["%s: %s" % (n, v) for n, v in headers]
    lines.append("Content-Length: %d" % len(body.encode()))
    return "\r\n".join(lines) + "\r\n\r\n" + body


def response(req, code, reason, to_tag=None, contact=None, extra=(), body="",
             record_route=True):
    hs = [("Via", v) for v in req.hdrs("Via")]
    if record_route:
        hs += [("Record-Route", v) for v in req.hdrs("Record-Route")]
    to = req.hdr("To")
    if to_tag and ";tag=" not in to:
        to += ";tag=" + to_tag
    hs += [("From", req.hdr("From")), ("To", to),
           ("Call-ID", req.hdr("Call-ID")), ("CSeq", req.hdr("CSeq"))]
    if contact:
        hs.append(("Contact", contact))
    hs += list(extra)
    return build("SIP/2.0 %d %s" % (code, reason), hs, body)


def take_message(buf):
    """(message text, rest) from a stream buffer, or (None, buf)"""
    while buf.startswith(b"\r\n"):
        buf = buf[2:]      # keep-alive CRLFs
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return None, buf
    head = buf[:end].decode(errors="replace")
    m = re.search(r"^(?:Content-Length|l)\s*:\s*(\d+)", head, re.I | re.M)
    clen = int(m.group(1)) if m else 0
    total = end + 4 + clen
    if len(buf) < total:
        return None, buf
    return buf[:total].decode(errors="replace"), buf[total:]


class StreamUA:
    """A phone on one TLS or TCP connection to the proxy; listens on no port."""

    def __init__(self, local_ip, proxy_ip, proxy_port, tls=True, ctx=None,
                 user="1001", timeout=5.0):
        self.local_ip = local_ip
        self.user = user
        self.tls = tls
        raw = socket.create_connection((proxy_ip, proxy_port), timeout=timeout,
                                       source_address=(local_ip, 0))
        if tls:
            if ctx is None:
                ctx = client_context()
            self.sock = ctx.wrap_socket(raw, server_hostname=None)
        else:
            self.sock = raw
        self.local_port = self.sock.getsockname()[1]
        self.proxy = (proxy_ip, proxy_port)
        self.buf = b""
        self.received = []
        self.closed = False

    @property
    def transport(self):
        return "TLS" if self.tls else "TCP"

    def via(self, branch=None):
        return "SIP/2.0/%s %s;branch=z9hG4bK%s;rport" % (
            self.transport, hostport(self.local_ip, self.local_port),
            branch or new_id("b"))

    def contact_uri(self, port=5061):
        """what the phone claims: its own address and a port it never opens"""
        return "sip:%s@%s;transport=%s" % (
            self.user, hostport(self.local_ip, port), self.transport.lower())

    def send(self, text):
        self.sock.sendall(text.encode())

    def recv(self, timeout=5.0, want=None):
        """next message (optionally the next one for which want(msg) is true)"""
        deadline = time.monotonic() + timeout
        while True:
            text, self.buf = take_message(self.buf)
            if text is not None:
                msg = SipMsg(text)
                self.received.append(msg)
                if want is None or want(msg):
                    return msg
                continue
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("phone %s:%d: no SIP message within %.1fs"
                                   % (self.local_ip, self.local_port, timeout))
            if not (self.tls and self.sock.pending()):
                r, _, _ = select.select([self.sock], [], [], left)
                if not r:
                    continue
            try:
                data = self.sock.recv(65536)
            except (ssl.SSLError, OSError) as e:
                raise ConnectionError("phone connection failed: %s" % e)
            if not data:
                self.closed = True
                raise ConnectionError("proxy closed the phone's connection")
            self.buf += data

    def register(self, registrar_host, expires=3600, contact=None,
                 call_id=None, cseq=1, extra=(), contacts=None):
        """send a REGISTER; returns (call_id, the Contact sent)"""
        call_id = call_id or new_id("reg")
        aor = "sip:%s@%s" % (self.user, registrar_host)
        hs = [("Via", self.via()), ("Max-Forwards", "70"),
              ("From", "<%s>;tag=%s" % (aor, new_id("t"))), ("To", "<%s>" % aor),
              ("Call-ID", call_id), ("CSeq", "%d REGISTER" % cseq)]
        if contacts is None:
            contact = contact or "<%s>;expires=%d" % (self.contact_uri(), expires)
            contacts = [contact]
        for c in contacts:
            hs.append(("Contact", c))
        if expires is not None:
            hs.append(("Expires", str(expires)))
        hs += list(extra)
        self.send(build("REGISTER sip:%s SIP/2.0" % registrar_host, hs))
        return call_id, contacts

    def close(self):
        try:
            if self.tls:
                self.sock.unwrap()
        except (ssl.SSLError, OSError, ValueError):
            pass
        try:
            self.sock.close()
        except OSError:
            pass
        self.closed = True


def __getattr__(name):
    # UdpUA is sip_peer.UdpUA (one receive loop for every test peer);
    # imported on first use, as sip_peer imports this module
    if name == "UdpUA":
        from sip_peer import UdpUA
        return UdpUA
    raise AttributeError("module %r has no attribute %r" % (__name__, name))


def client_context(cert=None, key=None, min_version=None, max_version=None,
                   ciphers=None):
    """TLS client context; the phone does not verify the proxy certificate
    (the tests are about the proxy's side)."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    if ciphers:
        ctx.set_ciphers(ciphers)
    if min_version:
        ctx.minimum_version = min_version
    if max_version:
        ctx.maximum_version = max_version
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def in_dialog(method, dialog, sender_via, cseq, body=""):
    """an in-dialog request: dialog = dict(ruri, route (list), from, to,
    call_id)"""
    hs = [("Via", sender_via), ("Max-Forwards", "70")]
    hs += [("Route", r) for r in dialog["route"]]
    hs += [("From", dialog["from"]), ("To", dialog["to"]),
           ("Call-ID", dialog["call_id"]),
           ("CSeq", "%d %s" % (cseq, method))]
    return build("%s %s SIP/2.0" % (method, dialog["ruri"]), hs, body)


class Certs:
    """CA, server and client certificates, and a client certificate from a
    CA the proxy does not trust."""

    def __init__(self, directory):
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        self.dir = d
        self.ca_key, self.ca = d / "ca.key", d / "ca.pem"
        self.server_key, self.server = d / "server.key", d / "server.pem"
        self.client_key, self.client = d / "client.key", d / "client.pem"
        self.rogue_ca_key, self.rogue_ca = d / "rogue-ca.key", d / "rogue-ca.pem"
        self.rogue_key, self.rogue = d / "rogue.key", d / "rogue.pem"
        self._ca(self.ca_key, self.ca, "kamailio-genesys test CA")
        self._ca(self.rogue_ca_key, self.rogue_ca, "untrusted CA")
        self._leaf(self.server_key, self.server, "proxy.test", self.ca, self.ca_key)
        self._leaf(self.client_key, self.client, "phone-1001", self.ca, self.ca_key)
        self._leaf(self.rogue_key, self.rogue, "phone-rogue", self.rogue_ca,
                   self.rogue_ca_key)

    def _run(self, *args):
        subprocess.run(["openssl"] + list(args), check=True,
                       capture_output=True, cwd=str(self.dir))

    def _ca(self, key, pem, cn):
        self._run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                  "-subj", "/CN=%s" % cn, "-keyout", str(key), "-out", str(pem),
                  "-addext", "basicConstraints=critical,CA:TRUE",
                  "-addext", "keyUsage=critical,keyCertSign,cRLSign")

    def _leaf(self, key, pem, cn, ca, ca_key):
        csr = Path(str(pem) + ".csr")
        self._run("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=%s" % cn,
                  "-keyout", str(key), "-out", str(csr))
        ext = Path(str(pem) + ".ext")
        ext.write_text("basicConstraints=CA:FALSE\n"
                       "subjectAltName=DNS:%s,IP:127.0.0.1\n"
                       "extendedKeyUsage=serverAuth,clientAuth\n" % cn)
        self._run("x509", "-req", "-in", str(csr), "-CA", str(ca), "-CAkey",
                  str(ca_key), "-CAcreateserial", "-days", "2", "-out", str(pem),
                  "-extfile", str(ext))
