"""One UDP SIP responder for many targets: a socket bound to 0.0.0.0:<port>
answers OPTIONS sent to any loopback address on that port, from the very
address the probe was sent to (IP_PKTINFO), so thousands of SIP Servers
cost one socket and one thread.  Used by test_oos_scale.py and
bench/oos/schedule.py.

Per destination address it keeps, online (constant memory per target):
the number of OPTIONS seen, the last arrival, and the intervals between
consecutive new probes (retransmissions of a Call-ID are not counted).
Arrival times are the kernel's receive timestamps (SO_TIMESTAMPNS), so a
responder thread that runs late does not show as a late probe."""

import socket
import struct
import threading
import time

IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8)
SO_TIMESTAMPNS = getattr(socket, "SO_TIMESTAMPNS", 35)


def member_address(i, octet2=251):
    """The i-th (0-based) target address: 127.<octet2>.<hi>.<lo>."""
    return "127.%d.%d.%d" % (octet2, i // 250, i % 250 + 1)


class TargetStats:
    __slots__ = ("probes", "last", "last_cid", "intervals", "off", "min_iv",
                 "max_iv", "errors")

    def __init__(self):
        self.probes = 0
        self.last = None
        self.last_cid = None
        self.intervals = 0
        self.off = 0           # intervals off by more than the tolerance
        self.min_iv = None
        self.max_iv = None
        self.errors = []       # relative errors of the intervals (optional)


class ManyResponder(threading.Thread):
    """period/tolerance: an interval is 'off' when |iv - period| > tolerance
    * period (both in seconds); keep_errors stores every relative error."""

    def __init__(self, port=0, code=200, period=None, tolerance=0.10,
                 keep_errors=False):
        super().__init__(daemon=True)
        self.code = code
        self.period = period
        self.tolerance = tolerance
        self.keep_errors = keep_errors
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        self.sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        self.sock.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
        self.sock.bind(("0.0.0.0", port))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.1)
        self.stats = {}        # destination address -> TargetStats
        self.other = 0         # non-SIP datagrams (transport checks)
        self.recording = True
        self._quit = threading.Event()

    def uri(self, address):
        return "sip:%s:%d" % (address, self.port)

    def reset_stats(self):
        self.stats = {}

    def run(self):
        sock = self.sock
        while not self._quit.is_set():
            try:
                data, anc, _flags, src = sock.recvmsg(4096, 256)
            except socket.timeout:
                continue
            except OSError:
                break
            now = time.monotonic()
            dst = None
            for level, typ, cdata in anc:
                if level == socket.IPPROTO_IP and typ == IP_PKTINFO:
                    dst = socket.inet_ntoa(cdata[8:12])
                elif level == socket.SOL_SOCKET and typ == SO_TIMESTAMPNS:
                    sec, nsec = struct.unpack("=qq", cdata[:16])
                    now = sec + nsec * 1e-9  # wall clock: intervals only
            if not data.startswith(b"OPTIONS "):
                self.other += 1
                continue
            head = data.split(b"\r\n\r\n", 1)[0].split(b"\r\n")
            via, frm, to, cid, cseq = [], b"", b"", b"", b""
            for line in head[1:]:
                name, _, val = line.partition(b":")
                n = name.strip().lower()
                if n in (b"via", b"v"):
                    via.append(line)
                elif n in (b"from", b"f"):
                    frm = line
                elif n in (b"to", b"t"):
                    to = line
                elif n in (b"call-id", b"i"):
                    cid = val.strip()
                elif n == b"cseq":
                    cseq = line
            if self.recording and dst is not None:
                st = self.stats.get(dst)
                if st is None:
                    st = self.stats[dst] = TargetStats()
                if cid != st.last_cid:
                    if st.last is not None:
                        iv = now - st.last
                        st.intervals += 1
                        if st.min_iv is None or iv < st.min_iv:
                            st.min_iv = iv
                        if st.max_iv is None or iv > st.max_iv:
                            st.max_iv = iv
                        if self.period:
                            err = (iv - self.period) / self.period
                            if abs(err) > self.tolerance:
                                st.off += 1
                            if self.keep_errors:
                                st.errors.append(err)
                    st.probes += 1
                    st.last = now
                    st.last_cid = cid
            if self.code is None:
                continue
            reply = b"\r\n".join(
                [b"SIP/2.0 %d OK" % self.code] + via
                + [frm, to + b";tag=many", b"Call-ID: " + cid, cseq,
                   b"Content-Length: 0", b"", b""])
            anc_out = []
            if dst is not None:
                # answer from the address the probe was sent to
                anc_out = [(socket.IPPROTO_IP, IP_PKTINFO,
                            struct.pack("=I4s4s", 0, socket.inet_aton(dst),
                                        b"\0\0\0\0"))]
            try:
                sock.sendmsg([reply], anc_out, 0, src)
            except OSError:
                pass

    def stop(self):
        self._quit.set()
        self.join(timeout=2)
        self.sock.close()
