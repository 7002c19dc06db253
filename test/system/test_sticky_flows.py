"""genesys_tlssticky: what happens to a phone's dialogs and bindings when its
flow dies.

- in-dialog requests toward a phone whose flow is gone: the reconnect
  policy (TCP phones that accept inbound connections) opens a new
  connection to the phone's own Contact (480 when nobody answers there);
  the no-inbound policy (TLS default) answers 430 at once and connects to
  nothing;
- a phone that vanishes without closing its connection (power loss, cable
  pulled) is detected by TCP keep-alive: the phone sits in its own network
  namespace behind a veth pair whose far end the test takes down.
"""

import os
import random
import re
import socket
import subprocess
import threading
import time

import pytest

import harness
import sticky_env as env
from sip_peer import SipPeer
from tls_ua import (StreamUA, build, in_dialog, new_id, response, uri_of,
                    uri_param)
from test_sticky import (certs, sipserver, phones, register, call_phone, phone_calls,  # noqa: F401 (fixtures)
                         sipserver_calls, sipserver_hangs_up, final, proxy_udp,
                         start_reference)


def Listener(ip, port):
    """The phone's own Contact address: a started TCP SIP peer that accepts
    the proxy's new connections and answers nothing by itself."""
    p = SipPeer("tcp", address=ip, port=port, rules={"*": None})
    p.start()
    return p


def tcp_phone_proxy(kamailio_factory, tmp_path, certs, sipserver):
    return env.start_proxy(kamailio_factory, tmp_path, certs, sipserver,
                           modparams=[("tcp", 1), ("tcp_policy", '"reconnect"')])


def tcp_phone(phones, k, sipserver, ip):
    """a TCP phone on ip whose Contact is ip:5070 (where a Listener may
    wait), registered through k; returns (phone, 200 OK to REGISTER)"""
    phone = phones(ip, k.address, 5060, tls=False)
    phone.own_contact = "sip:1001@%s:5070;transport=tcp" % ip
    reg, _ = register(phone, k, sipserver,
                      contact="<%s>;expires=600" % phone.own_contact)
    return phone, reg


def bye_over_new_connection(lsn, phone):
    """the proxy connects to the phone's Contact (lsn) and sends the BYE
    there; the phone answers 200"""
    assert lsn.wait_accept(5) is not None, \
        "the proxy did not connect to the phone's Contact"
    bye = lsn.wait_for(lambda m: True, timeout=5,
                       what="a request over the new connection")[0]
    assert bye.method == "BYE" and bye.ruri == phone.own_contact, bye.text
    lsn.send_to(response(bye, 200, "OK"), bye)
    return bye


def close_flow(k, phone):
    """the phone closes its flow; the proxy sees it closed"""
    phone.close()
    assert env.wait_for(lambda: env.tcp_conns(k) == [], 5), env.tcp_conns(k)


# ------------------------------------------ in-dialog, flow gone: reconnect

def test_in_dialog_reconnect_opens_new_connection(kamailio_factory, tmp_path,
                                                  certs, sipserver, phones):
    """TCP phone, reconnect policy, listening on its Contact: the SIP
    Server's BYE of a call set up over the phone's flow, sent after that
    flow closed, reaches the phone over a NEW connection the proxy opens to
    the phone's Contact (sticky_route() 2, counted as reconnect, logged)."""
    k = tcp_phone_proxy(kamailio_factory, tmp_path, certs, sipserver)
    ip = harness.next_address()
    lsn = Listener(ip, 5070)
    try:
        phone, reg = tcp_phone(phones, k, sipserver, ip)
        rewritten = uri_of(reg.contacts()[0])
        assert env.bindings(k)[0]["policy"] == "reconnect"
        dlg = sipserver_calls(sipserver, k, phone, rewritten, phone.own_contact)
        assert lsn.wait_accept(0) is None  # so far all over the phone's flow
        routed = env.stats(k)["routed"]

        close_flow(k, phone)
        t0 = time.monotonic()
        sipserver.send(in_dialog("BYE", dlg, sipserver.via(), 2), proxy_udp(k))
        bye_over_new_connection(lsn, phone)
        rpl = sipserver.recv(5, want=lambda m: m.is_reply and m.method == "BYE")
        assert rpl.status == 200, rpl.text
        assert time.monotonic() - t0 < 3.0
        # the new connection: the peer is the phone's Contact (ip:5070)
        conns = env.tcp_conns(k)
        assert [c for c in conns if c[1] == ip and c[2] == 5070], conns
        st = env.stats(k)
        assert st["reconnect"] == 1 and st["flow_failed"] == 0
        assert st["routed"] == routed
        k.wait_log(r"flow gone, reconnect policy: in-dialog BYE for the phone"
                   r" at %s:%d \(its tcp connection \d+ is closed\) sent by"
                   r" normal routing to sip:1001@%s:5070;transport=tcp"
                   % (re.escape(ip), phone.local_port, re.escape(ip)))
        # the binding outlives its flow (reconnect policy)
        [b] = env.bindings(k)
        assert b["alive"] == 0
    finally:
        lsn.stop()


def test_in_dialog_reconnect_nobody_listening_gets_480(kamailio_factory,
                                                       tmp_path, certs,
                                                       sipserver, phones):
    """The same with a call the phone made (flow token from sticky_rr()) and
    a phone that listens nowhere: the SIP Server's BYE gets 480 (not 430),
    promptly."""
    k = tcp_phone_proxy(kamailio_factory, tmp_path, certs, sipserver)
    ip = harness.next_address()
    phone = phones(ip, k.address, 5060, tls=False)
    phone.own_contact = "sip:1001@%s:5070;transport=tcp" % ip
    register(phone, k, sipserver, contact="<%s>;expires=600" % phone.own_contact)
    sdlg = phone_calls(sipserver, k, phone, phone.own_contact)
    close_flow(k, phone)

    t0 = time.monotonic()
    sipserver.send(in_dialog("BYE", sdlg, sipserver.via(), 1), proxy_udp(k))
    rpl = sipserver.recv(10, want=lambda m: m.is_reply and m.method == "BYE"
                         and m.status >= 200)
    took = time.monotonic() - t0
    assert rpl.status == 480, rpl.text
    assert took < 3.0, took
    st = env.stats(k)
    assert st["reconnect"] == 1 and st["flow_failed"] == 0
    k.wait_log(r"flow gone, reconnect policy: in-dialog BYE for the phone at"
               r" %s:%d" % (re.escape(ip), phone.local_port))


def test_in_dialog_no_inbound_gets_430_without_connecting(kamailio_factory,
                                                          tmp_path, certs,
                                                          sipserver, phones):
    """TLS phone (no-inbound, the default): after its flow closed, the SIP
    Server's BYE gets 430 at once and the proxy opens no connection, even
    though something listens on the phone's Contact address."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    ip = harness.next_address()
    lsn = Listener(ip, 5061)
    try:
        phone = phones(ip, k.address, 5061)
        phone.own_contact = phone.contact_uri()    # ip:5061;transport=tls
        reg, _ = register(phone, k, sipserver)
        assert env.bindings(k)[0]["policy"] == "no-inbound"
        dlg = sipserver_calls(sipserver, k, phone, uri_of(reg.contacts()[0]),
                              phone.own_contact)
        close_flow(k, phone)
        t0 = time.monotonic()
        sipserver.send(in_dialog("BYE", dlg, sipserver.via(), 2), proxy_udp(k))
        rpl = sipserver.recv(5, want=lambda m: m.is_reply and m.method == "BYE")
        assert rpl.status == 430, rpl.text
        assert time.monotonic() - t0 < 1.0
        assert lsn.wait_accept(0.5) is None    # none within 0.5 s
        assert env.tcp_conns(k) == []
        st = env.stats(k)
        assert st["flow_failed"] == 1 and st["reconnect"] == 0
        k.wait_log(r"flow gone: BYE for a dialog cannot reach the phone, its"
                   r" tls connection \d+ from %s:%d is closed"
                   % (re.escape(ip), phone.local_port))
    finally:
        lsn.stop()


def test_reference_config_in_dialog_reconnect(kamailio_factory, tmp_path,
                                              certs, sipserver, phones):
    """etc/kamailio.cfg (tcp 1, tcp_policy reconnect): after a TCP phone's
    flow closed, the SIP Server's BYE of a call it made to the phone reaches
    the phone over a new connection to its Contact; the BYE of a call the
    phone made, once the phone listens nowhere, gets 480 from
    failure_route[STICKY_RECONNECT_FAILED] (armed for in-dialog requests)."""
    k = start_reference(kamailio_factory, tmp_path, certs, sipserver)
    ip = harness.next_address()
    lsn = Listener(ip, 5070)
    try:
        phone, reg = tcp_phone(phones, k, sipserver, ip)
        assert env.bindings(k)[0]["policy"] == "reconnect"
        dlg1 = sipserver_calls(sipserver, k, phone, uri_of(reg.contacts()[0]),
                              phone.own_contact)
        dlg2 = phone_calls(sipserver, k, phone, phone.own_contact)
        close_flow(k, phone)

        sipserver.send(in_dialog("BYE", dlg1, sipserver.via(), 2), proxy_udp(k))
        bye_over_new_connection(lsn, phone)
        assert sipserver.recv(5, want=lambda m: m.is_reply and m.method == "BYE"
                              ).status == 200
    finally:
        lsn.stop()
    # the phone listens nowhere now (and closed the proxy's new connection)
    assert env.wait_for(lambda: env.tcp_conns(k) == [], 5), env.tcp_conns(k)
    t0 = time.monotonic()
    sipserver.send(in_dialog("BYE", dlg2, sipserver.via(), 1), proxy_udp(k))
    rpl = sipserver.recv(10, want=lambda m: m.is_reply and m.method == "BYE"
                         and m.status >= 200)
    assert rpl.status == 480, rpl.text
    assert time.monotonic() - t0 < 3.0
    st = env.stats(k)
    assert st["reconnect"] == 2 and st["flow_failed"] == 0


# ------------------------------------------ dead phone detected by keep-alive

CLONE_NEWNET = 0x40000000
KEEPIDLE, KEEPINTVL, KEEPCNT = 2, 1, 2


def _ip(*args, check=True):
    r = subprocess.run(["ip"] + list(args), capture_output=True, text=True,
                       timeout=10)
    if check and r.returncode != 0:
        raise AssertionError("ip %s: %s" % (" ".join(args), r.stderr.strip()))
    return r


class NetNS:
    """A network namespace 'kgtest-<tag>' joined to the host by a veth pair
    on a /30 of 169.254.0.0/16: host side .1 (kamailio listens there), the
    namespace side .2 (the phone)."""

    def __init__(self):
        tag = "%06x" % random.randrange(1 << 24)
        self.name = "kgtest-" + tag
        self.host_if, self.ns_if = "kgv%sh" % tag, "kgv%sn" % tag
        used = _ip("-o", "-4", "addr").stdout
        while True:
            net = "169.254.%d.%d" % (random.randrange(1, 255),
                                     4 * random.randrange(0, 64))
            base = net.rsplit(".", 1)[0]
            if " %s." % base not in used:
                break
        last = int(net.rsplit(".", 1)[1])
        self.host_ip = "%s.%d" % (base, last + 1)
        self.phone_ip = "%s.%d" % (base, last + 2)
        self.made = False

    def create(self):
        r = _ip("netns", "add", self.name, check=False)
        if r.returncode != 0:
            pytest.skip("cannot create a network namespace (ip netns add: %s)"
                        % r.stderr.strip())
        self.made = True
        _ip("link", "add", self.host_if, "type", "veth", "peer", "name",
            self.ns_if, "netns", self.name)
        _ip("addr", "add", self.host_ip + "/30", "dev", self.host_if)
        _ip("link", "set", self.host_if, "up")
        _ip("-n", self.name, "addr", "add", self.phone_ip + "/30", "dev", self.ns_if)
        _ip("-n", self.name, "link", "set", self.ns_if, "up")
        _ip("-n", self.name, "link", "set", "lo", "up")
        # the host side has its address (no DAD for IPv4) and carrier
        deadline = time.monotonic() + 5
        while "LOWER_UP" not in _ip("link", "show", self.host_if).stdout:
            assert time.monotonic() < deadline, "veth %s has no carrier" % self.host_if
            time.sleep(0.05)
        return self

    def run(self, fn, *a, **kw):
        """fn(*a, **kw) in a thread that joined the namespace: sockets it
        makes stay in the namespace, the test process does not move"""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        out = {}

        def body():
            fd = os.open("/run/netns/%s" % self.name, os.O_RDONLY)
            try:
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    raise OSError(ctypes.get_errno(), "setns %s" % self.name)
                out["v"] = fn(*a, **kw)
            except BaseException as e:     # re-raised in the caller
                out["e"] = e
            finally:
                os.close(fd)
        t = threading.Thread(target=body)
        t.start()
        t.join(30)
        if "e" in out:
            raise out["e"]
        return out["v"]

    def pull_cable(self):
        """the phone vanishes: its end of the link goes down; nothing (no
        FIN, no RST) reaches the proxy any more"""
        _ip("-n", self.name, "link", "set", self.ns_if, "down")

    def destroy(self):
        _ip("link", "del", self.host_if, check=False)
        if self.made:
            _ip("netns", "del", self.name, check=False)


@pytest.fixture
def netns():
    """set up before kamailio (it listens on the host side) and removed
    after it, whatever the test's outcome"""
    if os.geteuid() != 0:
        pytest.skip("network namespaces need root (CI runs as root)")
    ns = NetNS()
    try:
        yield ns.create()
    finally:
        ns.destroy()


def keepalive_timer(host_ip, phone_ip, phone_port):
    """ss's timer field of the proxy's socket of the phone's connection,
    e.g. 'timer:(keepalive,1.2sec,0)', or None when no such socket"""
    r = subprocess.run(["ss", "-tnoH", "state", "established", "src", host_ip,
                        "dst", "%s:%d" % (phone_ip, phone_port)],
                       capture_output=True, text=True, timeout=10)
    if not r.stdout.strip():
        return None
    m = re.search(r"timer:\([^)]*\)", r.stdout)
    return m.group(0) if m else ""


def test_dead_phone_detected_by_tcp_keepalive(netns, kamailio_factory,
                                              tmp_path, certs, sipserver,
                                              sipp_factory):
    """A TLS phone in its own network namespace registers over a veth link.
    While the link is up and the phone idles far longer than keepidle, the
    keep-alive probes are answered and the binding stays.  Then the phone's
    link goes down (no FIN, no RST: a pulled cable): the kernel's TCP
    keep-alive (tcp_keepidle/keepintvl/keepcnt on kamailio's accepted
    socket) fails the connection, kamailio closes it, the module removes the
    binding and logs the phone; a SIPp INVITE to the rewritten Contact gets
    430 at once and no connection is opened."""
    k = env.start_proxy(
        kamailio_factory, tmp_path, certs, sipserver,
        extra_globals="listen=tls:%s:5061\ntcp_keepidle=%d\ntcp_keepintvl=%d\n"
                      "tcp_keepcnt=%d\n" % (netns.host_ip, KEEPIDLE, KEEPINTVL,
                                            KEEPCNT))
    phone = netns.run(StreamUA, netns.phone_ip, netns.host_ip, 5061)
    try:
        reg, ok = register(phone, k, sipserver)
        assert ok.status == 200
        rewritten = uri_of(reg.contacts()[0])
        [b] = env.bindings(k)
        assert b["source"] == "%s:%d" % (netns.phone_ip, phone.local_port)
        assert b["transport"] == "tls" and b["alive"] == 1
        # keep-alive is on for kamailio's accepted socket of the phone
        # (once the last data is acknowledged: 'on' is the retransmit timer)
        timer = env.wait_for(lambda: (keepalive_timer(
            netns.host_ip, netns.phone_ip, phone.local_port) or "").startswith(
            "timer:(keepalive") and "ok", 3)
        assert timer, keepalive_timer(netns.host_ip, netns.phone_ip,
                                      phone.local_port)

        # negative control: idle for keepidle + keepintvl * keepcnt and more,
        # link up: probes answered, the binding and connection stay
        time.sleep(KEEPIDLE + KEEPINTVL * KEEPCNT + 2)
        [b] = env.bindings(k)
        assert b["alive"] == 1
        assert len(env.tcp_conns(k)) == 1
        assert "sticky binding removed" not in k.log_text()

        # the cable is pulled
        t0 = time.monotonic()
        netns.pull_cable()
        assert env.wait_for(lambda: env.bindings(k) == [], 30, step=0.2), \
            env.bindings(k)
        took = time.monotonic() - t0
        k.wait_log(r"sticky binding removed \(connection closed\): AOR 1001@%s,"
                   r" phone Contact %s, tls flow \d+ from %s:%d"
                   % (re.escape(k.address), re.escape(phone.contact_uri()),
                      re.escape(netns.phone_ip), phone.local_port))
        # not before keep-alive could have noticed it
        assert took >= KEEPINTVL * KEEPCNT - 0.5, took
        assert env.tcp_conns(k) == []

        # the SIP Server calls the vanished phone: 430 at once, no connection
        t1 = time.monotonic()
        res = sipp_factory("sticky_call_gone.xml", "caller",
                           remote="%s:5060" % k.address,
                           extra_args=["-key", "ruri", rewritten]).run()
        assert res.rc == 0 and res.successful == 1, res.screen
        assert res.received("SIP/2.0 430")
        assert time.monotonic() - t1 < 5.0
        assert env.tcp_conns(k) == []
        assert env.stats(k)["flow_failed"] == 1
    finally:
        # no TLS close_notify exchange with a phone that is gone
        phone.sock.close()


# -------------------------------------------------------------------- IPv6

def ipv6_loopback_port():
    """a free TCP port on ::1, or None when ::1 is unusable here"""
    try:
        s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
        s.bind(("::1", 0))
        port = s.getsockname()[1]
        s.close()
        return port
    except OSError:
        return None


def test_ipv6_phone_over_tls(kamailio_factory, tmp_path, certs, sipserver,
                             phones):
    """A phone on ::1 registers over TLS to the proxy's IPv6 socket: the SIP
    Server (IPv4, UDP) sees the rewritten Contact, the phone its own; the
    SIP Server's INVITE, ACK and BYE reach the phone over its IPv6
    connection (Record-Route names the IPv6 socket); once the phone closed
    the connection, 430."""
    port = ipv6_loopback_port()
    if port is None:
        pytest.skip("no IPv6 loopback (::1) in this environment")
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver,
                        extra_globals="listen=tls:[::1]:%d\n" % port)
    phone = phones("::1", "::1", port)
    assert phone.contact_uri() == "sip:1001@[::1]:5061;transport=tls"
    reg, ok = register(phone, k, sipserver)
    rewritten = uri_of(reg.contacts()[0])
    assert rewritten.startswith("sip:1001@%s:5060;gts=" % k.address), rewritten
    assert "::1" not in reg.contacts()[0]
    assert uri_of(ok.contacts()[0]) == phone.contact_uri()
    [b] = env.bindings(k)
    assert b["source"] == "[::1]:%d" % phone.local_port, b
    assert b["transport"] == "tls" and b["alive"] == 1
    conns = env.tcp_conns(k)
    assert len(conns) == 1, conns

    dlg = sipserver_calls(sipserver, k, phone, rewritten)
    assert dlg["inv"].ruri == phone.contact_uri()
    rrs = dlg["inv"].hdrs("Record-Route")
    assert any("[::1]:%d" % port in r for r in rrs), rrs
    assert dlg["ack"].ruri == phone.contact_uri()
    sipserver_hangs_up(sipserver, k, phone, dlg)
    assert env.tcp_conns(k) == conns
    assert env.stats(k)["routed"] == 3

    phone.close()
    k.wait_log(r"sticky binding removed \(connection closed\): AOR 1001@%s,"
               r" phone Contact %s, tls flow \d+ from \[::1\]:%d"
               % (re.escape(k.address), re.escape(phone.contact_uri()),
                  phone.local_port), timeout=5)
    call_phone(sipserver, k, rewritten)
    assert final(sipserver).status == 430
    assert env.tcp_conns(k) == []
