"""genesys_oos probing a TLS target that really answers: a Python `ssl`
server on its own loopback address reads the OPTIONS probes off the TLS
stream and answers them, kamailio (with the tls module) probes
sip:<addr>:<port>;transport=tls, and the states are read over
`kamcmd genesys_oos.list`."""

import re
import socket
import ssl
import threading
import time

import pytest

import harness
from test_oos_util import _header, make_cfg, target, wait_state
from tls_ua import Certs

FAST = {"oos_check": 1, "oos_force": 1, "oos_timeout": 1000}


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("oos-tls-certs"))


class TlsResponder(threading.Thread):
    """TLS SIP peer: answers every OPTIONS with `code` (Content-Length
    framing, one thread per connection)."""

    def __init__(self, certs, code=200, address=None, port=5061):
        super().__init__(daemon=True)
        self.address = address or harness.next_address()
        self.port = port
        self.code = code
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.load_cert_chain(str(certs.server), str(certs.server_key))
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((self.address, port))
        self.sock.listen(16)
        self.sock.settimeout(0.1)
        self.conns = []
        self.probes = 0
        self.handshakes = 0
        self.accepts = []         # peer addresses of every accepted connection
        self._quit = threading.Event()
        self._lock = threading.Lock()

    @property
    def uri(self):
        return "sip:%s:%d;transport=tls" % (self.address, self.port)

    def run(self):
        while not self._quit.is_set():
            try:
                raw, peer = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                break
            with self._lock:
                self.accepts.append(peer)
            threading.Thread(target=self._serve, args=(raw,), daemon=True).start()

    def _serve(self, raw):
        raw.settimeout(5)
        try:
            conn = self.ctx.wrap_socket(raw, server_side=True)
        except (OSError, ssl.SSLError):
            raw.close()
            return
        with self._lock:
            self.handshakes += 1
            self.conns.append(conn)
        conn.settimeout(0.2)
        buf = b""
        while not self._quit.is_set():
            try:
                data = conn.recv(65535)
            except socket.timeout:
                continue
            except (OSError, ssl.SSLError):
                break
            if not data:
                break
            buf += data
            while True:
                buf = buf.lstrip(b"\r\n")   # CRLF keep-alives
                end = buf.find(b"\r\n\r\n")
                if end < 0:
                    break
                head = buf[:end].decode(errors="replace")
                m = re.search(r"^(?:Content-Length|l)\s*:\s*(\d+)", head,
                              re.I | re.M)
                clen = int(m.group(1)) if m else 0
                if len(buf) < end + 4 + clen:
                    break
                buf = buf[end + 4 + clen:]
                if head.startswith("OPTIONS "):
                    self._answer(conn, head.split("\r\n"))
        try:
            conn.close()
        except OSError:
            pass

    def _answer(self, conn, lines):
        out = ["SIP/2.0 %d Test Reply" % self.code]
        out += _header(lines, "Via", "v")
        out += _header(lines, "From", "f")
        out += [l + ";tag=x" for l in _header(lines, "To", "t")]
        out += _header(lines, "Call-ID", "i")
        out += _header(lines, "CSeq")
        out += ["Content-Length: 0", "", ""]
        try:
            conn.sendall("\r\n".join(out).encode())
            with self._lock:
                self.probes += 1
        except (OSError, ssl.SSLError):
            pass

    def stop(self):
        self._quit.set()
        self.sock.close()
        self.join(timeout=2)
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


@pytest.fixture
def tls_responders(certs):
    made = []

    def make(**kw):
        r = TlsResponder(certs, **kw)
        r.start()
        made.append(r)
        return r

    yield make
    for r in made:
        r.stop()


def start_tls_kamailio(kamailio_factory, tmp_path, certs, params):
    """make_cfg's kamailio plus the tls module (loaded before genesys_oos)
    and a TLS listen socket, with a client profile that does not verify."""
    tcfg = tmp_path / "tls.cfg"
    tcfg.write_text("""[server:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
private_key = %s
certificate = %s

[client:default]
method = TLSv1.2+
verify_certificate = no
require_certificate = no
""" % (certs.server_key, certs.server))
    cfg = make_cfg(params, tls=True)
    address = harness.next_address()
    return kamailio_factory(cfg_text=cfg, address=address,
                            defines={"LISTEN_TLS": "tls:%s:5061" % address,
                                     "TLS_CFG": '"%s"' % tcfg})


def port_listening(address, port):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(1)
    try:
        s.connect((address, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_tls_target_answering_is_active_then_down_when_gone(
        kamailio_factory, tls_responders, tmp_path, certs):
    """A TLS target whose server answers OPTIONS over TLS with 200 is
    ACTIVE (last code 200); once the server is gone (port closed) the
    next probe's connect is refused and the target goes DOWN quickly."""
    srv = tls_responders(code=200)
    k = start_tls_kamailio(kamailio_factory, tmp_path, certs,
                           dict(FAST, target=srv.uri))
    _, row = wait_state(k, srv.uri, "active", timeout=6)
    assert row["last_code"] == 200, row
    # the replies really came over TLS from our server, and keep coming
    assert srv.handshakes >= 1 and srv.probes >= 1, (srv.handshakes, srv.probes)
    n = srv.probes
    time.sleep(2.5)
    assert srv.probes >= n + 1, (n, srv.probes)
    row = target(k, srv.uri)
    assert row["state"] == "active" and row["last_code"] == 200, row

    srv.stop()
    assert not port_listening(srv.address, srv.port)
    took, row = wait_state(k, srv.uri, "down", timeout=5)
    assert row["last_reason"] == "transport", row
    assert row["transport_errors"] >= 1, row
    # next probe at most oos_check (1s) later, refused in one round trip
    assert took < 3.0, "TLS target took %.2fs to go down" % took
    assert re.search(r"target %s state active -> down" % re.escape(srv.uri),
                     k.log_text()), k.log_text()[-3000:]


def test_tls_target_answering_503_is_inactive(
        kamailio_factory, tls_responders, tmp_path, certs):
    """The same TLS server answering 503: INACTIVE with last code 503."""
    srv = tls_responders(code=503)
    k = start_tls_kamailio(kamailio_factory, tmp_path, certs,
                           dict(FAST, target=srv.uri))
    _, row = wait_state(k, srv.uri, "inactive", timeout=6)
    assert row["last_code"] == 503, row
    assert srv.probes >= 1, srv.probes
