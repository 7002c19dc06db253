"""Helpers for the pool-acts-as-one tests (issue 11): N kamailio proxies
of one pool sharing decisions over Kamailio's dmq module on loopback."""

import time

import harness
import ha_util as hu


def peers(k):
    """genesys_ha.peers (JSON-RPC) -> (its own fields, {address: peer})"""
    head = k.rpc_json("genesys_ha.peers")
    return head, {p["address"]: p for p in head.get("peers", [])}


DMQ_PORT = 5090


def dmq_defines(addr, others, serving="SIPS_A", extra=None):
    d = {"WITH_DMQ": None,
         "OWN_ADDRESS": '"%s:5060"' % addr,
         # DMQ on its own socket (its own receivers), as recommended
         "DMQ_LISTEN": "udp:%s:%d" % (addr, DMQ_PORT),
         "DMQ_SERVER_ADDRESS": '"sip:%s:%d"' % (addr, DMQ_PORT),
         "DMQ_INTERVAL": "300", "DMQ_PEER_TIMEOUT": "1000",
         "SERVING_SIPSERVER": '"%s"' % serving}
    if others:
        d["DMQ_NOTIFICATION_ADDRESS"] = '"sip:%s:%d"' % (others[0], DMQ_PORT)
    if len(others) > 1:
        d["DMQ_NOTIFICATION_ADDRESS2"] = '"sip:%s:%d"' % (others[1],
                                                           DMQ_PORT)
    d.update(extra or {})
    return d


class Pool:
    """n proxies on fresh loopback addresses, one pool file listing them."""

    def __init__(self, kamailio_factory, tmp_path, pairs, n=3, extra=None):
        self.factory = kamailio_factory
        self.addrs = [harness.next_address() for _ in range(n)]
        self.path = tmp_path / "pool.xml"
        self.pairs = pairs
        self.write()
        self.extra = extra or {}
        self.ks = [None] * n

    def write(self, proxies=None):
        hu.write_pool(self.path, self.pairs, proxies=[
            (a + ":5060", None) for a in (proxies or self.addrs)])

    def start(self, i, name=None, path=None):
        others = [a for a in self.addrs if a != self.addrs[i]]
        k = hu.start_proxy(self.factory, str(path or self.path),
                           name=name or "proxy%d" % i,
                           address=self.addrs[i],
                           defines=dmq_defines(self.addrs[i], others,
                                               extra=self.extra))
        self.ks[i] = k
        return k

    def start_all(self, timeout=10.0):
        for i in range(len(self.addrs)):
            self.start(i)
        self.wait_mesh(timeout)

    def wait_mesh(self, timeout=10.0):
        """every proxy sees every other one up"""
        deadline = time.monotonic() + timeout
        while True:
            ok = True
            for k in self.ks:
                if k is None:
                    continue
                _, ps = peers(k)
                for a in self.addrs:
                    if a == k.address:
                        continue
                    ent = ps.get(a + ":5060")
                    if not ent or ent.get("state") != "up":
                        ok = False
            if ok:
                return
            if time.monotonic() > deadline:
                raise AssertionError("peers not all up:\n" + "\n".join(
                    str(peers(k)[0]) for k in self.ks if k))
            time.sleep(0.05)


def wait_active(ks, pair, role, timeout=5.0):
    """poll until every proxy in ks has role active for pair; returns the
    seconds it took"""
    t0 = time.monotonic()
    left = list(ks)
    while left:
        left = [k for k in left if hu.pool(k)[pair]["active"] != role]
        if not left:
            break
        if time.monotonic() - t0 > timeout:
            raise AssertionError("%s not on %s within %.1fs:\n%s" % (
                [k.address for k in left], role, timeout,
                "\n".join(str(hu.pool(k)) for k in left)))
        time.sleep(0.002)
    return time.monotonic() - t0


class SelectivePeer(hu.Peer):
    """A SIP Server that does not answer OPTIONS from the addresses in
    `ignore` (a partition between it and some proxies): they are dropped
    unseen."""

    def __init__(self, ignore=(), **kw):
        super().__init__(**kw)
        self.ignore = set(ignore)

    def accept(self, msg):
        return not (msg.method == "OPTIONS" and not msg.is_reply
                    and msg.src[0] in self.ignore)


def send_kdmq(k, body, address=None, peer="genesys_ha", timeout=3.0,
              port=DMQ_PORT):
    """One KDMQ request for DMQ peer `peer` to proxy k from `address` (a
    fresh loopback address by default); returns the final reply's first
    line or None."""
    import socket
    addr = address or harness.next_address()
    dport = port
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind((addr, 0))
    port = s.getsockname()[1]
    callid = "kdmq-%f@%s" % (time.time(), addr)
    msg = ("KDMQ sip:%s@%s:%d SIP/2.0\r\n"
           "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%d;rport\r\n"
           "From: <sip:%s@%s:%d>;tag=d1\r\n"
           "To: <sip:%s@%s:%d>\r\n"
           "Call-ID: %s\r\n"
           "CSeq: 1 KDMQ\r\n"
           "Max-Forwards: 1\r\n"
           "Content-Type: text/plain\r\n"
           "Content-Length: %d\r\n\r\n%s"
           % (peer, k.address, dport, addr, port, int(time.time() * 1e6),
              peer, addr, port, peer, k.address, dport, callid, len(body),
              body))
    text = hu.final_reply(s, msg, (k.address, dport), timeout)
    return text.split("\r\n", 1)[0] if text else None
