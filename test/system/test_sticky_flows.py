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
import select
import socket
import subprocess
import threading
import time

import pytest

import harness
import sticky_env as env
from tls_ua import (SipMsg, StreamUA, build, in_dialog, new_id, response,
                    take_message, uri_of, uri_param)
from test_sticky import (certs, sipserver, phones, register, call_phone,  # noqa: F401 (fixtures)
                         final, proxy_udp)


class Listener:
    """The phone's own Contact address: a TCP socket that accepts the
    proxy's new connections and reads SIP from them."""

    def __init__(self, ip, port):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((ip, port))
        self.sock.listen(8)
        self.conns = []

    def accepted(self, timeout):
        """a connection accepted within timeout, or None"""
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return None
        c, _ = self.sock.accept()
        self.conns.append(c)
        return c

    def close(self):
        for c in self.conns:
            c.close()
        self.sock.close()


def read_msg(conn, timeout=5.0):
    conn.settimeout(timeout)
    buf = b""
    while True:
        text, buf = take_message(buf)
        if text:
            return SipMsg(text)
        data = conn.recv(65536)
        if not data:
            raise ConnectionError("proxy closed the new connection")
        buf += data


def tcp_phone_proxy(kamailio_factory, tmp_path, certs, sipserver):
    return env.start_proxy(kamailio_factory, tmp_path, certs, sipserver,
                           modparams=[("tcp", 1), ("tcp_policy", '"reconnect"')])


def sipserver_calls(sipserver, k, phone, rewritten):
    """the SIP Server calls the phone (INVITE to the rewritten Contact, over
    the phone's flow), the phone answers 200, the SIP Server ACKs; returns
    the SIP Server's dialog"""
    call_phone(sipserver, k, rewritten)
    inv = phone.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    rrs = inv.hdrs("Record-Route")
    assert len(rrs) == 2 and all("gts=" in r for r in rrs), rrs
    phone.send(response(inv, 200, "OK", to_tag=new_id("p"),
                        contact="<%s>" % phone.own_contact))
    ok = final(sipserver)
    assert ok.status == 200, ok.text
    dlg = {"ruri": uri_of(ok.hdr("Contact")),
           "route": list(reversed(ok.hdrs("Record-Route"))),
           "from": inv.hdr("From"), "to": ok.hdr("To"),
           "call_id": inv.hdr("Call-ID")}
    assert dlg["ruri"] == phone.own_contact
    sipserver.send(in_dialog("ACK", dlg, sipserver.via(), 1), proxy_udp(k))
    phone.recv(5, want=lambda m: m.method == "ACK")
    return dlg


def phone_calls(sipserver, k, phone):
    """the phone calls the SIP Server over its flow (sticky_rr puts the
    connection token in Record-Route); returns the SIP Server's (UAS)
    dialog"""
    call_id = new_id("pc")
    phone.send(build("INVITE sip:2000@%s:%d SIP/2.0" % (sipserver.ip, sipserver.port), [
        ("Via", phone.via()), ("Max-Forwards", "70"),
        ("From", "<sip:1001@%s>;tag=pt1" % k.address),
        ("To", "<sip:2000@%s>" % sipserver.ip), ("Call-ID", call_id),
        ("CSeq", "1 INVITE"), ("Contact", "<%s>" % phone.own_contact)]))
    inv = sipserver.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    rrs = inv.hdrs("Record-Route")
    assert len(rrs) == 2 and all("gts=" in r for r in rrs), rrs
    sipserver.send(response(inv, 200, "OK", to_tag="ss1",
                            contact="<sip:2000@%s:%d>" % (sipserver.ip, sipserver.port)),
                   inv.src)
    ok = phone.recv(5, want=lambda m: m.is_reply and m.status == 200)
    pdlg = {"ruri": uri_of(ok.hdr("Contact")),
            "route": list(reversed(ok.hdrs("Record-Route"))),
            "from": inv.hdr("From"), "to": ok.hdr("To"), "call_id": call_id}
    phone.send(in_dialog("ACK", pdlg, phone.via(), 1))
    sipserver.recv(5, want=lambda m: m.method == "ACK")
    return {"ruri": phone.own_contact, "route": rrs, "from": ok.hdr("To"),
            "to": inv.hdr("From"), "call_id": call_id}


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
        phone = phones(ip, k.address, 5060, tls=False)
        phone.own_contact = "sip:1001@%s:5070;transport=tcp" % ip
        reg, _ = register(phone, k, sipserver,
                          contact="<%s>;expires=600" % phone.own_contact)
        rewritten = uri_of(reg.contacts()[0])
        assert env.bindings(k)[0]["policy"] == "reconnect"
        dlg = sipserver_calls(sipserver, k, phone, rewritten)
        assert lsn.accepted(0) is None     # so far all over the phone's flow
        routed = env.stats(k)["routed"]

        close_flow(k, phone)
        t0 = time.monotonic()
        sipserver.send(in_dialog("BYE", dlg, sipserver.via(), 2), proxy_udp(k))
        conn = lsn.accepted(5)
        assert conn is not None, "the proxy did not connect to the phone's Contact"
        bye = read_msg(conn)
        assert bye.method == "BYE" and bye.ruri == phone.own_contact, bye.text
        conn.sendall(response(bye, 200, "OK").encode())
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
        assert b["alive"] == "0"
    finally:
        lsn.close()


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
    sdlg = phone_calls(sipserver, k, phone)
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
        dlg = sipserver_calls(sipserver, k, phone, uri_of(reg.contacts()[0]))
        close_flow(k, phone)
        t0 = time.monotonic()
        sipserver.send(in_dialog("BYE", dlg, sipserver.via(), 2), proxy_udp(k))
        rpl = sipserver.recv(5, want=lambda m: m.is_reply and m.method == "BYE")
        assert rpl.status == 430, rpl.text
        assert time.monotonic() - t0 < 1.0
        assert lsn.accepted(0.5) is None
        assert env.tcp_conns(k) == []
        st = env.stats(k)
        assert st["flow_failed"] == 1 and st["reconnect"] == 0
        k.wait_log(r"flow gone: BYE for a dialog cannot reach the phone, its"
                   r" tls connection \d+ from %s:%d is closed"
                   % (re.escape(ip), phone.local_port))
    finally:
        lsn.close()
