"""Many TLS phones at once against one kamailio (asyncio + ssl).

Shared by the TLS scale system test (test_tls_scale.py) and the stress
benchmark (bench/tls_stress/tls_stress.py).

- `Registrar`: the SIP Server on UDP. It answers every REGISTER 200 OK with
  the Contacts it received (the proxy's rewritten ones) and calls a phone on
  request: INVITE to the rewritten Contact through the proxy, ACK for the
  final reply.
- `Phone`: one TLS connection from its own source address; REGISTERs, then
  answers every INVITE that reaches it over that connection with 486.
- `run_swarm()`: connect N phones (at most `concurrency` handshakes at once),
  each REGISTERs and is then called once; keep them all connected for
  `hold` seconds; call every phone again at the end. Returns counts and
  latencies.

Nothing is faked: the messages are real SIP over real TLS through the real
kamailio; the Python side only keeps state per phone.
"""

import asyncio
import re
import resource
import socket
import ssl
import statistics
import time

from tls_ua import SipMsg, build, response, take_message, uri_of, new_id


def raise_nofile(n):
    """soft and hard RLIMIT_NOFILE to at least n (root may raise the hard
    limit); children (kamailio) inherit it. Returns the soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < n:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (n, max(n, hard)))
        except (ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def client_ctx():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return ctx


def pct(values, p):
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, int(len(v) * p / 100.0))]


class Registrar(asyncio.DatagramProtocol):
    """The SIP Server: registrar and caller, on ip:port (UDP)."""

    def __init__(self, ip, port, proxy):
        self.ip, self.port, self.proxy = ip, port, proxy
        self.contacts = {}          # user -> rewritten Contact URI
        self.pending = {}           # Call-ID -> future of the final reply
        self.invites = {}           # Call-ID -> (Request-URI, Via) for ACK
        self.answered = set()       # Call-IDs with a reply: no retransmission
        self.registers = 0
        self.transport = None

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        for opt in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            try:
                if opt is not None:
                    sock.setsockopt(socket.SOL_SOCKET, opt, 16 << 20)
                    break
            except OSError:
                pass

    def datagram_received(self, data, addr):
        try:
            self._received(SipMsg(data.decode(errors="replace")), addr)
        except (TypeError, ValueError, IndexError, AttributeError):
            pass    # not SIP we understand (e.g. a dying proxy's last words)

    def _received(self, msg, addr):
        if not msg.is_reply:
            if msg.method == "REGISTER":
                self._register(msg, addr)
            elif msg.method not in ("ACK",):
                self.transport.sendto(
                    response(msg, 405, "Method Not Allowed", to_tag="r")
                    .encode(), addr)
            return
        self.answered.add(msg.hdr("Call-ID"))
        if msg.status < 200:
            return
        fut = self.pending.pop(msg.hdr("Call-ID"), None)
        if msg.method == "INVITE":
            self._ack(msg)
        if fut is not None and not fut.done():
            fut.set_result(msg.status)

    def _register(self, msg, addr):
        self.registers += 1
        cs = msg.contacts()
        user = re.search(r"sips?:([^@;>]+)@", msg.hdr("To"))
        if cs and user:
            self.contacts[user.group(1)] = uri_of(cs[0])
        self.transport.sendto(response(
            msg, 200, "OK", to_tag="reg", record_route=False,
            extra=[("Contact", c) for c in cs]).encode(), addr)

    def _ack(self, rpl):
        inv = self.invites.pop(rpl.hdr("Call-ID"), None)
        if inv is None:
            return
        ruri, via = inv
        self.transport.sendto(build("ACK %s SIP/2.0" % ruri, [
            ("Via", via), ("Max-Forwards", "70"),
            ("From", rpl.hdr("From")), ("To", rpl.hdr("To")),
            ("Call-ID", rpl.hdr("Call-ID")), ("CSeq", "1 ACK")]).encode(),
            self.proxy)

    async def call(self, user, timeout=32.0):
        """INVITE the phone's rewritten Contact through the proxy; the final
        status, or None when none came within timeout."""
        ruri = self.contacts.get(user)
        if ruri is None:
            return None
        cid = new_id("inv")
        via = "SIP/2.0/UDP %s:%d;branch=z9hG4bK%s" % (
            self.ip, self.port, new_id("b"))
        self.invites[cid] = (ruri, via)
        fut = asyncio.get_running_loop().create_future()
        self.pending[cid] = fut
        inv = build("INVITE %s SIP/2.0" % ruri, [
            ("Via", via), ("Max-Forwards", "70"),
            ("From", "<sip:sipserver@%s:%d>;tag=%s" % (self.ip, self.port,
                                                       new_id("t"))),
            ("To", "<sip:%s@%s>" % (user, self.ip)),
            ("Call-ID", cid), ("CSeq", "1 INVITE"),
            ("Contact", "<sip:sipserver@%s:%d>" % (self.ip, self.port))]
            ).encode()
        # UDP: retransmitted as RFC 3261 timer A until a reply arrives
        t1, deadline = 0.5, time.monotonic() + timeout
        try:
            while True:
                self.transport.sendto(inv, self.proxy)
                left = deadline - time.monotonic()
                if left <= 0:
                    raise asyncio.TimeoutError
                try:
                    return await asyncio.wait_for(asyncio.shield(fut),
                                                  min(t1, left))
                except asyncio.TimeoutError:
                    if cid in self.answered:
                        return await asyncio.wait_for(
                            fut, max(0.0, deadline - time.monotonic()))
                    t1 *= 2
        except asyncio.TimeoutError:
            self.pending.pop(cid, None)
            self.invites.pop(cid, None)
            return None
        finally:
            self.answered.discard(cid)


class Phone:
    """One TLS phone: its own connection, never a listening port."""

    def __init__(self, user, local_ip, proxy_ip, proxy_port, registrar_host,
                 real_contact=False):
        self.user = user
        self.real_contact = real_contact
        self.local_ip = local_ip
        self.proxy = (proxy_ip, proxy_port)
        self.registrar_host = registrar_host
        self.reader = self.writer = None
        self.local_port = 0
        self.reg_reply = None
        self.invites = 0
        self.closed = False
        self.error = None

    async def connect(self, ctx, timeout):
        self.reader, self.writer = await asyncio.wait_for(
            asyncio.open_connection(self.proxy[0], self.proxy[1], ssl=ctx,
                                    local_addr=(self.local_ip, 0),
                                    ssl_handshake_timeout=timeout),
            timeout)
        name = self.writer.get_extra_info("sockname")
        if name is None:
            # closed by the proxy right after the handshake
            raise ConnectionError("connection closed after the handshake")
        self.local_port = name[1]

    def contact_uri(self):
        """a port the phone never opens, or (real_contact: what a plain
        relay needs to find the connection) its connection's own port"""
        return "sip:%s@%s:%d;transport=tls" % (
            self.user, self.local_ip,
            self.local_port if self.real_contact else 5061)

    def register(self, expires=3600):
        aor = "sip:%s@%s" % (self.user, self.registrar_host)
        self._reg_cid = new_id("reg")
        self.writer.write(build("REGISTER sip:%s SIP/2.0" % self.registrar_host, [
            ("Via", "SIP/2.0/TLS %s:%d;branch=z9hG4bK%s;rport" % (
                self.local_ip, self.local_port, new_id("b"))),
            ("Max-Forwards", "70"),
            ("From", "<%s>;tag=%s" % (aor, new_id("t"))), ("To", "<%s>" % aor),
            ("Call-ID", self._reg_cid), ("CSeq", "1 REGISTER"),
            ("Contact", "<%s>;expires=%d" % (self.contact_uri(), expires)),
            ("Expires", str(expires))]).encode())

    async def refresh(self, timeout):
        """a re-REGISTER on the live connection; its final status"""
        self.registered = asyncio.get_running_loop().create_future()
        self.register()
        try:
            return await asyncio.wait_for(asyncio.shield(self.registered),
                                          timeout)
        except asyncio.TimeoutError:
            return None

    async def read_loop(self, registered):
        """answers INVITEs; sets self.registered (first: `registered`) at a
        REGISTER's final reply;
        returns when the proxy closes the connection"""
        buf = b""
        self.registered = registered
        try:
            while True:
                data = await self.reader.read(65536)
                if not data:
                    break
                buf += data
                while True:
                    text, buf = take_message(buf)
                    if text is None:
                        break
                    msg = SipMsg(text)
                    if msg.is_reply:
                        if msg.method == "REGISTER" and msg.status >= 200:
                            self.reg_reply = msg.status
                            if not self.registered.done():
                                self.registered.set_result(msg.status)
                    elif msg.method == "INVITE":
                        self.invites += 1
                        self.writer.write(response(
                            msg, 486, "Busy Here", to_tag="ph").encode())
        except (ConnectionError, ssl.SSLError, OSError) as e:
            self.error = str(e)
        self.closed = True
        if not self.registered.done():
            self.registered.set_result(None)

    def close(self):
        if self.writer is not None:
            try:
                self.writer.transport.abort()
            except Exception:
                pass


async def run_swarm(proxy_ip, proxy_port, registrar_ip, registrar_port, n,
                    source_ips, hold=0.0, concurrency=100, timeout=30.0,
                    final_call=True, on_tick=None, tick=10.0, on_registered=None,
                    real_contact=False, probe=0):
    """Connect n TLS phones, REGISTER and call each once, hold, call again.
    probe: after the set-up, that many phones (spread over all) re-REGISTER
    and are called one at a time: latency with n phones connected and
    nothing else going on.
    real_contact: phones register their connection's own address (for a
    plain relay without stickiness).
    on_tick(elapsed, phones) runs every `tick` seconds while holding (e.g. to check
    kamailio); on_registered() once after the first round.
    Returns a dict of results."""
    loop = asyncio.get_running_loop()
    reg_transport, reg = await loop.create_datagram_endpoint(
        lambda: Registrar(registrar_ip, registrar_port, (proxy_ip, 5060)),
        local_addr=(registrar_ip, registrar_port))
    ctx = client_ctx()
    sem = asyncio.Semaphore(concurrency)
    phones = [Phone("7%06d" % i, source_ips[i % len(source_ips)], proxy_ip,
                    proxy_port, registrar_ip, real_contact)
              for i in range(n)]
    res = dict(phones=n, connected=0, registered=0, called=0, connect_errors=0,
               reg_ms=[], call_ms=[], hold=hold)
    readers = []

    async def one(p):
        async with sem:
            try:
                await p.connect(ctx, timeout)
            except (OSError, ssl.SSLError, asyncio.TimeoutError) as e:
                res["connect_errors"] += 1
                p.error = "connect: %s" % (e or type(e).__name__)
                return
            res["connected"] += 1
            registered = loop.create_future()
            readers.append(asyncio.ensure_future(p.read_loop(registered)))
            t0 = time.perf_counter()
            p.register()
            try:
                st = await asyncio.wait_for(asyncio.shield(registered), timeout)
            except asyncio.TimeoutError:
                st = None
            if st != 200:
                return
            res["registered"] += 1
            res["reg_ms"].append((time.perf_counter() - t0) * 1e3)
        t0 = time.perf_counter()
        st = await reg.call(p.user, timeout)
        if st == 486:
            res["called"] += 1
            res["call_ms"].append((time.perf_counter() - t0) * 1e3)

    t_start = time.monotonic()
    await asyncio.gather(*(one(p) for p in phones))
    res["setup_s"] = time.monotonic() - t_start
    if on_registered:
        on_registered(res)

    if probe:
        await asyncio.sleep(1.0)
        live = [p for p in phones if p.writer is not None and not p.closed]
        step = max(1, len(live) // probe)
        reg_ms, call_ms = [], []
        for p in live[::step][:probe]:
            t0 = time.perf_counter()
            if await p.refresh(timeout) == 200:
                reg_ms.append((time.perf_counter() - t0) * 1e3)
            t0 = time.perf_counter()
            if await reg.call(p.user, timeout) == 486:
                call_ms.append((time.perf_counter() - t0) * 1e3)
        res["probe"] = len(live[::step][:probe])
        res["probe_reg_ms"], res["probe_call_ms"] = reg_ms, call_ms

    t_hold = time.monotonic()
    while time.monotonic() - t_hold < hold:
        await asyncio.sleep(min(tick, hold - (time.monotonic() - t_hold)))
        if on_tick and on_tick(time.monotonic() - t_hold, phones) is False:
            break
    res["held_s"] = time.monotonic() - t_hold
    res["alive_after_hold"] = sum(1 for p in phones
                                  if p.writer is not None and not p.closed)

    if final_call:
        sem2 = asyncio.Semaphore(concurrency * 2)

        async def again(p):
            if p.writer is None or p.closed:
                return 0
            async with sem2:
                return 1 if await reg.call(p.user, timeout) == 486 else 0
        res["reachable_at_end"] = sum(
            await asyncio.gather(*(again(p) for p in phones)))

    for p in phones:
        p.close()
    for r in readers:
        r.cancel()
    await asyncio.gather(*readers, return_exceptions=True)
    reg_transport.close()
    res["errors"] = sorted({p.error for p in phones if p.error})[:10]
    for k in ("reg_ms", "call_ms", "probe_reg_ms", "probe_call_ms"):
        if k not in res:
            continue
        v = res.pop(k)
        res[k.replace("_ms", "_p50_ms")] = round(statistics.median(v), 1) if v else None
        res[k.replace("_ms", "_p99_ms")] = round(pct(v, 99), 1) if v else None
    return res


def reference_tls_cfg(certs, path):
    """etc/tls.cfg with the test certificates"""
    import harness
    text = (harness.TOP / "etc" / "tls.cfg").read_text()
    for a, b in (("/etc/kamailio/tls/proxy.key", certs.server_key),
                 ("/etc/kamailio/tls/proxy.pem", certs.server),
                 ("/etc/kamailio/tls/ca.pem", certs.ca)):
        text = text.replace(a, str(b))
    path.write_text(text)
    return path


def reference_cfg_text():
    """etc/kamailio.cfg, without core dumps: a crashing run (the fix off)
    must not leave a core file of the size of shm behind"""
    import harness
    text = harness.REFERENCE_CFG.read_text()
    head, rest = text.split("\n", 1)
    return head + "\ndisable_core_dump=yes\n" + rest


def shm_real_used(k):
    """core.shmmem real_used (bytes, allocator overhead included)"""
    return k.rpc_json("core.shmmem")["real_used"]


def critical_lines(k):
    return [ln for ln in k.log_text().splitlines()
            if "CRITICAL" in ln or "BUG" in ln or "signal 11" in ln
            or "terminated by a signal" in ln]


def wait_idle(k, timeout=30.0):
    """wait until kamailio has torn down every TCP/TLS connection and freed
    every transaction (tm's wait timer), before stopping it after a swarm:
    a child that SIGTERM ends inside a shm (de)allocation (the phones' mass
    close frees OpenSSL state in tcp_main and the TLS workers) leaves the
    shm heap half updated, and the main process then crashes or loops in
    its own cleanup: stock Kamailio's shutdown race (docs/tls.md "Stopping
    under load"), not what these tests test. Returns the seconds waited."""
    t0 = time.monotonic()
    while True:
        conns = k.rpc_json("core.tcp_info")["opened_connections"]
        trans = k.rpc_json("tm.stats")["current"]
        if conns == 0 and trans == 0:
            return time.monotonic() - t0
        if time.monotonic() - t0 > timeout:
            raise AssertionError("kamailio not idle after %.0fs: %d connections,"
                                 " %d transactions" % (timeout, conns, trans))
        time.sleep(0.1)
