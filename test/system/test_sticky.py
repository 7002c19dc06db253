"""genesys_tlssticky: TLS (and TCP) connection stickiness, with TLS really on
the wire.  The phone (tls_ua.StreamUA) opens one TLS connection from its own
loopback address and listens on no port at all; the SIP Server is SIPp or a
UDP peer on another address."""

import re
import ssl
import time

import pytest

import harness
import sticky_env as env
from tls_ua import (Certs, StreamUA, UdpUA, SipMsg, response, in_dialog,
                    uri_of, uri_param, hdr_param, new_id, client_context, build)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    return Certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def sipserver():
    s = UdpUA(harness.next_address(), 5060)
    yield s
    s.close()


@pytest.fixture
def phones():
    made = []

    def make(*a, **kw):
        p = StreamUA(*a, **kw)
        made.append(p)
        return p
    yield make
    for p in made:
        p.close()


def registrar_answer(sipserver, expires=None, extra_contacts=()):
    """the SIP Server as registrar: takes one REGISTER, answers 200 listing
    the Contacts it got (plus extra_contacts); returns the REGISTER"""
    reg = sipserver.recv(5, want=lambda m: m.method == "REGISTER"
                         and not m.is_reply)
    contacts = []
    for c in reg.contacts():
        if expires is not None:
            c = re.sub(r";expires=\d+", "", c) + ";expires=%d" % expires
        contacts.append(c)
    hs = [("Contact", c) for c in contacts + list(extra_contacts)]
    sipserver.send(response(reg, 200, "OK", to_tag=new_id("r"), extra=hs,
                            record_route=False), reg.src)
    return reg


def register(phone, proxy, sipserver, expires=3600, registrar_expires=None,
             **kw):
    """phone REGISTERs through the proxy; returns (REGISTER the SIP Server
    saw, 200 OK the phone saw)"""
    phone.register(proxy.address, expires=expires, **kw)
    reg = registrar_answer(sipserver, registrar_expires)
    ok = phone.recv(5, want=lambda m: m.is_reply and m.method == "REGISTER"
                    and m.status >= 200)
    return reg, ok


def proxy_udp(k):
    return (k.address, 5060)


def call_phone(sipserver, k, ruri):
    """SIP Server sends an INVITE to ruri through the proxy"""
    inv = sipserver.invite(ruri, proxy_udp(k))
    sipserver.last_invite = (inv, proxy_udp(k))
    return inv


def final(sipserver, timeout=5):
    """the final reply to the last INVITE; a non-2xx one is ACKed (so the
    proxy stops retransmitting it)"""
    inv, proxy = sipserver.last_invite
    rpl = sipserver.recv(timeout, want=lambda m: m.is_reply and m.status >= 200
                         and m.method == "INVITE"
                         and m.hdr("Call-ID") == inv.hdr("Call-ID"))
    if rpl.status >= 300 and rpl.method == "INVITE":
        hs = [("Via", inv.hdr("Via")), ("Max-Forwards", "70"),
              ("From", inv.hdr("From")), ("To", rpl.hdr("To")),
              ("Call-ID", inv.hdr("Call-ID")), ("CSeq", "1 ACK")]
        sipserver.send(build("ACK %s SIP/2.0" % inv.ruri, hs), proxy)
    return rpl


# ---------------------------------------------------------------------------

def test_register_rewrites_contact_and_restores_it(kamailio_factory, tmp_path,
                                                    certs, sipserver, phones):
    """The SIP Server sees a Contact naming the proxy with a flow token (user
    part and parameters kept); the phone sees exactly its own Contact."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5061)
    own = "<%s>;expires=600;+sip.instance=\"<urn:uuid:1234>\"" % phone.contact_uri()
    phone.register(k.address, expires=600, contact=own)
    reg = registrar_answer(sipserver)
    ok = phone.recv(5, want=lambda m: m.is_reply and m.status >= 200)

    # SIP Server side: the rewritten Contact
    [c] = reg.contacts()
    uri = uri_of(c)
    assert uri.startswith("sip:1001@%s:5060;" % k.address), c
    tok = uri_param(uri, "gts")
    assert tok and re.fullmatch(r"[A-Za-z0-9_-]{40,120}", tok), c
    assert phone.local_ip not in c
    assert hdr_param(c, "expires") == "600"
    assert '+sip.instance="<urn:uuid:1234>"' in c
    # the REGISTER itself went to the registrar from the proxy
    assert reg.src[0] == k.address

    # phone side: its own Contact back
    assert ok.status == 200
    [pc] = ok.contacts()
    assert uri_of(pc) == phone.contact_uri(), ok.text
    assert "gts=" not in ok.text
    assert hdr_param(pc, "expires") == "600"

    # the binding, as operators see it
    [b] = env.bindings(k)
    assert b["aor"] == "1001@%s" % k.address
    assert b["contact"] == phone.contact_uri()
    assert tok in b["rewritten"]
    assert b["source"] == "%s:%d" % (phone.local_ip, phone.local_port)
    assert b["transport"] == "tls"
    assert b["state"] == "active" and b["alive"] == 1
    assert 590 <= b["expires"] <= 600
    st = env.stats(k)
    assert st["bindings"] == 1 and st["active"] == 1 and st["registers"] == 1


def test_invite_reaches_phone_over_its_own_connection(kamailio_factory, tmp_path,
                                                      certs, sipserver, phones):
    """INVITE to the rewritten Contact arrives over the phone's connection
    (the phone listens on no port); ACK and BYE from the SIP Server, then a
    second call ended by the phone's BYE; never a new connection."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5061)
    reg, _ = register(phone, k, sipserver)
    rewritten = uri_of(reg.contacts()[0])
    conns_before = env.tcp_conns(k)
    assert len(conns_before) == 1, conns_before

    for who_hangs_up in ("sipserver", "phone"):
        dlg = sipserver_calls(sipserver, k, phone, rewritten)
        inv = dlg["inv"]
        # the phone's own Contact as Request-URI, over its connection
        assert inv.ruri == phone.contact_uri(), inv.text
        assert dlg["ack"].ruri == phone.contact_uri()

        if who_hangs_up == "sipserver":
            sipserver_hangs_up(sipserver, k, phone, dlg)
        else:
            # the phone is UAS: its route set is Record-Route in order
            pdlg = {"ruri": uri_of(inv.hdr("Contact")),
                    "route": inv.hdrs("Record-Route"),
                    "from": dlg["to"], "to": inv.hdr("From"),
                    "call_id": inv.hdr("Call-ID")}
            phone.send(in_dialog("BYE", pdlg, phone.via(), 1))
            bye = sipserver.recv(5, want=lambda m: m.method == "BYE"
                                 and not m.is_reply)
            assert bye.ruri == pdlg["ruri"]
            sipserver.send(response(bye, 200, "OK", record_route=False), bye.src)
            bye_ok = phone.recv(5, want=lambda m: m.is_reply and m.method == "BYE")
            assert bye_ok.status == 200

    # still exactly the phone's one connection
    assert env.tcp_conns(k) == conns_before
    # toward the phone: 2 INVITEs, 2 ACKs, 1 BYE (the phone's BYE goes upstream)
    assert env.stats(k)["routed"] == 5


def sipserver_calls(sipserver, k, phone, ruri, contact=None):
    """The SIP Server calls the phone (INVITE to ruri, the rewritten
    Contact, over the phone's flow; both Record-Routes carry a flow token),
    the phone answers 200 with contact (default: its own Contact), the SIP
    Server ACKs. Returns the SIP Server's dialog, with the INVITE and the
    ACK the phone got under "inv" and "ack"."""
    contact = contact or phone.contact_uri()
    call_phone(sipserver, k, ruri)
    inv = phone.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    rrs = inv.hdrs("Record-Route")
    assert len(rrs) == 2 and all("gts=" in r for r in rrs), rrs
    phone.send(response(inv, 200, "OK", to_tag=new_id("p"),
                        contact="<%s>" % contact))
    ok = final(sipserver)
    assert ok.status == 200, ok.text
    dlg = {"ruri": uri_of(ok.hdr("Contact")),
           "route": list(reversed(ok.hdrs("Record-Route"))),
           "from": inv.hdr("From"), "to": ok.hdr("To"),
           "call_id": inv.hdr("Call-ID")}
    assert dlg["ruri"] == contact
    sipserver.send(in_dialog("ACK", dlg, sipserver.via(), 1), proxy_udp(k))
    dlg["ack"] = phone.recv(5, want=lambda m: m.method == "ACK")
    dlg["inv"] = inv
    return dlg


def sipserver_hangs_up(sipserver, k, phone, dlg, cseq=2):
    """the SIP Server's BYE in dlg reaches the phone, which answers 200"""
    sipserver.send(in_dialog("BYE", dlg, sipserver.via(), cseq), proxy_udp(k))
    bye = phone.recv(5, want=lambda m: m.method == "BYE" and not m.is_reply)
    phone.send(response(bye, 200, "OK"))
    assert sipserver.recv(5, want=lambda m: m.is_reply and m.method == "BYE").status == 200
    return bye


def phone_calls(sipserver, k, phone, contact=None):
    """The phone calls the SIP Server over its flow and ACKs the 200
    (sticky_rr() puts the connection token in both Record-Routes); returns
    the SIP Server's (UAS) dialog toward the phone's Contact."""
    contact = contact or phone.contact_uri()
    call_id = new_id("pc")
    phone.send(build("INVITE sip:2000@%s:%d SIP/2.0" % (sipserver.ip, sipserver.port), [
        ("Via", phone.via()), ("Max-Forwards", "70"),
        ("From", "<sip:1001@%s>;tag=pt1" % k.address),
        ("To", "<sip:2000@%s>" % sipserver.ip), ("Call-ID", call_id),
        ("CSeq", "1 INVITE"), ("Contact", "<%s>" % contact)]))
    inv = sipserver.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    rrs = inv.hdrs("Record-Route")
    assert len(rrs) == 2 and all("gts=" in r for r in rrs), rrs
    sipserver.send(response(inv, 200, "OK", to_tag="ss1",
                            contact="<sip:2000@%s:%d>" % (sipserver.ip, sipserver.port)),
                   inv.src)
    ok = phone.recv(5, want=lambda m: m.is_reply and m.status == 200)
    # phone ACKs along the route set (Record-Route reversed for the UAC)
    pdlg = {"ruri": uri_of(ok.hdr("Contact")),
            "route": list(reversed(ok.hdrs("Record-Route"))),
            "from": inv.hdr("From"), "to": ok.hdr("To"), "call_id": call_id}
    phone.send(in_dialog("ACK", pdlg, phone.via(), 1))
    sipserver.recv(5, want=lambda m: m.method == "ACK")
    # the SIP Server (UAS) side: route set = Record-Route in order
    return {"ruri": contact, "route": rrs, "from": ok.hdr("To"),
            "to": inv.hdr("From"), "call_id": call_id}


def test_call_from_phone_then_bye_from_sip_server(kamailio_factory, tmp_path,
                                                  certs, sipserver, phones):
    """The phone calls (INVITE over its TLS connection); the SIP Server's BYE
    (Request-URI = the phone's own Contact) comes back over the phone's
    connection thanks to the flow token in the proxy's Record-Route."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5061)
    register(phone, k, sipserver)
    conns = env.tcp_conns(k)
    sdlg = phone_calls(sipserver, k, phone)
    sipserver.send(in_dialog("BYE", sdlg, sipserver.via(), 1), proxy_udp(k))
    bye = phone.recv(5, want=lambda m: m.method == "BYE" and not m.is_reply)
    assert bye.ruri == phone.contact_uri()
    phone.send(response(bye, 200, "OK"))
    assert sipserver.recv(5, want=lambda m: m.is_reply and m.method == "BYE").status == 200
    assert env.tcp_conns(k) == conns

    # a TLS client without a binding (From AOR not registered on its flow):
    # no flow token in Record-Route, its dialogs are routed normally
    other = phones(harness.next_address(), k.address, 5061, user="3003")
    other.send(build("INVITE sip:2000@%s:%d SIP/2.0" % (sipserver.ip, sipserver.port), [
        ("Via", other.via()), ("Max-Forwards", "70"),
        ("From", "<sip:3003@%s>;tag=o1" % k.address),
        ("To", "<sip:2000@%s>" % sipserver.ip), ("Call-ID", new_id("o")),
        ("CSeq", "1 INVITE"), ("Contact", "<%s>" % other.contact_uri())]))
    inv2 = sipserver.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    assert inv2.hdrs("Record-Route") and not any(
        "gts=" in r for r in inv2.hdrs("Record-Route")), inv2.text
    sipserver.send(response(inv2, 486, "Busy Here", to_tag="x"), inv2.src)
    assert other.recv(5, want=lambda m: m.is_reply and m.status >= 200).status == 486


def test_cancel_reaches_phone_over_its_connection(kamailio_factory, tmp_path,
                                                  certs, sipserver, phones):
    """The SIP Server cancels a ringing call: the CANCEL (built by tm from
    the INVITE's branch) takes the phone's connection too."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5061)
    reg, _ = register(phone, k, sipserver)
    inv0 = call_phone(sipserver, k, uri_of(reg.contacts()[0]))
    inv = phone.recv(5, want=lambda m: m.method == "INVITE")
    phone.send(response(inv, 180, "Ringing", to_tag="pc"))
    sipserver.recv(5, want=lambda m: m.is_reply and m.status == 180)
    sipserver.send(build("CANCEL %s SIP/2.0" % inv0.ruri, [
        ("Via", inv0.hdr("Via")), ("Max-Forwards", "70"),
        ("From", inv0.hdr("From")), ("To", inv0.hdr("To")),
        ("Call-ID", inv0.hdr("Call-ID")), ("CSeq", "1 CANCEL")]), proxy_udp(k))
    cancel = phone.recv(5, want=lambda m: m.method == "CANCEL" and not m.is_reply)
    assert cancel.ruri == inv.ruri
    phone.send(response(cancel, 200, "OK", to_tag="pc"))
    phone.send(response(inv, 487, "Request Terminated", to_tag="pc"))
    assert final(sipserver).status == 487
    phone.recv(5, want=lambda m: m.method == "ACK")
    assert len(env.tcp_conns(k)) == 1


def test_phone_gone_gets_430_without_connecting(kamailio_factory, tmp_path,
                                                certs, sipserver, phones):
    """The phone closes its connection: the binding goes (log names the
    phone), the next INVITE gets 430 at once and no connection is opened."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5061)
    reg, _ = register(phone, k, sipserver)
    rewritten = uri_of(reg.contacts()[0])
    phone.close()
    k.wait_log(r"sticky binding removed \(connection closed\): AOR 1001@%s, "
               r"phone Contact %s" % (re.escape(k.address),
                                      re.escape(phone.contact_uri())), timeout=5)
    assert env.bindings(k) == []
    assert env.tcp_conns(k) == []

    t0 = time.monotonic()
    call_phone(sipserver, k, rewritten)
    rpl = final(sipserver)
    assert rpl.status == 430, rpl.text
    assert time.monotonic() - t0 < 1.0
    time.sleep(0.3)     # what is tested: no connection opened in that time
    assert env.tcp_conns(k) == []
    assert env.stats(k)["flow_failed"] == 1


def test_dead_connection_before_sweep_gets_430(kamailio_factory, tmp_path,
                                               certs, sipserver, phones):
    """Even while the binding is still listed (no close hook, long sweep
    interval), a request for a dead flow gets 430 and opens nothing."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver,
                        modparams=[("tcp_closed_hook", 0),
                                   ("timer_interval", 60)])
    phone = phones(harness.next_address(), k.address, 5061)
    reg, _ = register(phone, k, sipserver)
    rewritten = uri_of(reg.contacts()[0])
    phone.close()
    assert env.wait_for(lambda: env.tcp_conns(k) == [], 5)
    [b] = env.bindings(k)
    assert b["alive"] == 0
    call_phone(sipserver, k, rewritten)
    assert final(sipserver).status == 430
    time.sleep(0.3)     # what is tested: no connection opened in that time
    assert env.tcp_conns(k) == []


def test_reregister_over_new_connection_moves_traffic(kamailio_factory, tmp_path,
                                                      certs, sipserver, phones):
    """The phone re-registers over a new connection: the SIP Server gets a
    new token (new generation), INVITEs to it use the new connection, the
    old token is refused (403) and never forwarded; a refresh over the same
    connection keeps the same Contact."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    ip = harness.next_address()
    p1 = phones(ip, k.address, 5061)
    reg1, _ = register(p1, k, sipserver)
    old = uri_of(reg1.contacts()[0])
    # refresh on the same flow: identical Contact for the registrar
    reg1b, _ = register(p1, k, sipserver)
    assert uri_of(reg1b.contacts()[0]) == old
    gen1 = env.bindings(k)[0]["generation"] & 0xffffffff

    p2 = phones(ip, k.address, 5061)       # same phone, new connection
    reg2, _ = register(p2, k, sipserver)
    new = uri_of(reg2.contacts()[0])
    assert new != old and uri_param(new, "gts") != uri_param(old, "gts")
    [b] = env.bindings(k)            # the old binding was replaced
    assert b["generation"] & 0xffffffff == (gen1 + 1) & 0xffffffff
    assert b["source"] == "%s:%d" % (ip, p2.local_port)
    k.wait_log(r"sticky binding removed \(replaced by a registration on a newer flow\)")

    call_phone(sipserver, k, new)
    inv = p2.recv(5, want=lambda m: m.method == "INVITE")
    p2.send(response(inv, 486, "Busy Here", to_tag="x"))
    assert final(sipserver).status == 486

    call_phone(sipserver, k, old)
    assert final(sipserver).status == 403
    with pytest.raises(TimeoutError):
        p1.recv(0.5, want=lambda m: m.method == "INVITE")
    k.wait_log(r"stale flow token \(generation %d" % gen1)
    st = env.stats(k)
    assert (st["stale"], st["forged"], st["foreign"]) == (1, 0, 0), st


def test_two_proxies_same_secret(kamailio_factory, tmp_path, certs, sipserver,
                                 phones):
    """A phone registered through proxy A is reached through A, and through
    proxy B (same secret): B relays the INVITE to A, the relay address A's
    token names; B never opens a connection to the phone."""
    a = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver, name="a")
    b = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver, name="b")
    phone = phones(harness.next_address(), a.address, 5061)
    reg, _ = register(phone, a, sipserver)
    contact = uri_of(reg.contacts()[0])
    assert contact.startswith("sip:1001@%s:5060;" % a.address)

    # to B (same token, B's address): relayed to A, the phone rings
    via_b = contact.replace(a.address, b.address)
    call_phone(sipserver, b, via_b)
    inv = phone.recv(5, want=lambda m: m.method == "INVITE")
    phone.send(response(inv, 486, "Busy Here", to_tag="x"))
    assert final(sipserver).status == 486
    b.wait_log(r"for a flow of another proxy \(tls %s:5061\): relayed to that"
               r" proxy at udp %s:5060" % (re.escape(a.address), re.escape(a.address)))
    assert env.tcp_conns(b) == []
    st = env.stats(b)
    assert (st["foreign"], st["relayed"], st["forged"]) == (1, 1, 0), st
    # to A: the phone rings
    call_phone(sipserver, a, contact)
    inv = phone.recv(5, want=lambda m: m.method == "INVITE")
    phone.send(response(inv, 486, "Busy Here", to_tag="x"))
    assert final(sipserver).status == 486


def test_forged_and_malformed_tokens(kamailio_factory, tmp_path, certs,
                                     sipserver, phones):
    """A token with one character changed, a token signed with another secret
    and garbage: 403, never forwarded, counted as forged."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5061)
    reg, _ = register(phone, k, sipserver)
    uri = uri_of(reg.contacts()[0])
    tok = uri_param(uri, "gts")
    flipped = tok[:10] + ("A" if tok[10] != "A" else "B") + tok[11:]
    for bad in (flipped, "garbage!", tok[:-8]):
        call_phone(sipserver, k, uri.replace(tok, bad))
        assert final(sipserver).status == 403
    with pytest.raises(TimeoutError):
        phone.recv(0.5, want=lambda m: m.method == "INVITE")
    assert env.stats(k)["forged"] == 3
    k.wait_log(r"forged flow token in the Request-URI")
    k.wait_log(r"malformed flow token in the Request-URI")
    # Kamailio statistics (kex) carry the same counters
    st = k.statistics("genesys_tlssticky:")
    assert st["forged"] == 3, st
    assert st["bindings"] == 1, st
    assert st["routed"] == 0, st
    # list with an AOR filter; a bad argument is a 400 fault
    assert len(env.bindings(k, "1001@%s" % k.address.upper())) == 1
    assert env.bindings(k, "1002@%s" % k.address) == []
    assert k.rpc_fault("genesys_tlssticky.list", "x" * 300).code == 400


def test_expires_zero_and_expiry(kamailio_factory, tmp_path, certs, sipserver,
                                 phones):
    """Expires: 0 removes the binding (the registrar gets the Contact it
    stored); a binding also goes when its registration expires."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5061)
    reg, _ = register(phone, k, sipserver, expires=600)
    stored = uri_of(reg.contacts()[0])
    assert len(env.bindings(k)) == 1
    # de-register: the registrar must see the same Contact with expires=0;
    # it answers with no Contact left
    phone.register(k.address, expires=0,
                   contact="<%s>;expires=0" % phone.contact_uri())
    dereg = sipserver.recv(5, want=lambda m: m.method == "REGISTER")
    [c] = dereg.contacts()
    assert uri_of(c) == stored and hdr_param(c, "expires") == "0"
    sipserver.send(response(dereg, 200, "OK", to_tag="r", record_route=False),
                   dereg.src)
    phone.recv(5, want=lambda m: m.is_reply)
    assert env.bindings(k) == []
    k.wait_log(r"sticky binding removed \(removed by the registrar\)")

    # a short registration expires on its own
    reg, ok = register(phone, k, sipserver, expires=2)
    assert hdr_param(ok.contacts()[0], "expires") == "2"
    assert len(env.bindings(k)) == 1
    assert env.wait_for(lambda: env.bindings(k) == [], 6)
    k.wait_log(r"sticky binding removed \(expired\): AOR 1001@")
    call_phone(sipserver, k, uri_of(reg.contacts()[0]))
    assert final(sipserver).status == 430


def test_registrar_default_timeout_caps_both_sides(kamailio_factory, tmp_path,
                                                   certs, sipserver, phones):
    """registrar-default-timeout 120: the SIP Server is asked for at most
    120 s (Contact and Expires header), the phone is told at most 120 s even
    when the registrar grants more; shorter requests are kept."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver,
                        modparams=[("registrar_default_timeout", 120)])
    phone = phones(harness.next_address(), k.address, 5061)
    reg, ok = register(phone, k, sipserver, expires=3600, registrar_expires=3600)
    assert hdr_param(reg.contacts()[0], "expires") == "120"
    assert reg.hdr("Expires") == "120"
    assert hdr_param(ok.contacts()[0], "expires") == "120"
    assert env.bindings(k)[0]["expires"] <= 120

    reg, ok = register(phone, k, sipserver, expires=60)
    assert hdr_param(reg.contacts()[0], "expires") == "60"
    assert reg.hdr("Expires") == "60"
    assert hdr_param(ok.contacts()[0], "expires") == "60"

    # no expires at all from the phone: the cap is written
    phone.register(k.address, expires=None,
                   contact="<%s>" % phone.contact_uri())
    reg = registrar_answer(sipserver)
    phone.recv(5, want=lambda m: m.is_reply)
    assert hdr_param(reg.contacts()[0], "expires") == "120"


def test_no_cap_by_default(kamailio_factory, tmp_path, certs, sipserver, phones):
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5061)
    reg, ok = register(phone, k, sipserver, expires=7200)
    assert hdr_param(reg.contacts()[0], "expires") == "7200"
    assert reg.hdr("Expires") == "7200"
    assert hdr_param(ok.contacts()[0], "expires") == "7200"


# --------------------------------------------------------------- TLS policy

def tls_handshake_and_register(k, sipserver, ctx):
    """True when a phone with this client context can register"""
    try:
        phone = StreamUA(harness.next_address(), k.address, 5061, ctx=ctx)
    except (ssl.SSLError, OSError):
        return False
    try:
        phone.register(k.address)
        try:
            registrar_answer(sipserver)
        except TimeoutError:
            return False
        ok = phone.recv(5, want=lambda m: m.is_reply)
        return ok.status == 200
    except (ConnectionError, ssl.SSLError, OSError, TimeoutError):
        return False
    finally:
        phone.close()


def test_mutual_tls(kamailio_factory, tmp_path, certs, sipserver):
    """tls-mutual: a client without a certificate, or with one from a CA the
    proxy does not trust, is refused; one with a valid certificate works."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver, mutual=True)
    assert not tls_handshake_and_register(k, sipserver, client_context())
    assert not tls_handshake_and_register(
        k, sipserver, client_context(cert=str(certs.rogue), key=str(certs.rogue_key)))
    assert tls_handshake_and_register(
        k, sipserver, client_context(cert=str(certs.client), key=str(certs.client_key)))
    assert len(env.bindings(k)) == 1


def test_server_only_tls_accepts_client_without_certificate(
        kamailio_factory, tmp_path, certs, sipserver):
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    assert tls_handshake_and_register(k, sipserver, client_context())


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls11_client_refused_by_default(kamailio_factory, tmp_path, certs,
                                         sipserver):
    """TLSv1.2 and newer by default: a TLSv1.1-only client is refused while a
    TLSv1.2 client gets through the same proxy."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    old = client_context(min_version=ssl.TLSVersion.TLSv1_1,
                         max_version=ssl.TLSVersion.TLSv1_1,
                         ciphers="DEFAULT:@SECLEVEL=0")
    assert not tls_handshake_and_register(k, sipserver, old)
    assert sipserver.nothing(0.3)
    tls12 = client_context(min_version=ssl.TLSVersion.TLSv1_2,
                           max_version=ssl.TLSVersion.TLSv1_2)
    assert tls_handshake_and_register(k, sipserver, tls12)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_tls11_client_accepted_when_explicitly_allowed(kamailio_factory, tmp_path,
                                                       certs, sipserver):
    """The control of the test above: the same TLSv1.1 client gets in when
    the operator explicitly allows it (seed sip-tls-sec-protocol=TLSv11 ->
    method TLSv1.1+ and a cipher list that permits it), so the refusal is
    the proxy's doing."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver,
                        tls_method="TLSv1.1+", ciphers="DEFAULT:@SECLEVEL=0")
    old = client_context(min_version=ssl.TLSVersion.TLSv1_1,
                         max_version=ssl.TLSVersion.TLSv1_1,
                         ciphers="DEFAULT:@SECLEVEL=0")
    assert tls_handshake_and_register(k, sipserver, old)


# ------------------------------------------------------------ TCP phones

def test_tcp_phone_reconnect_policy(kamailio_factory, tmp_path, certs,
                                    sipserver, phones):
    """A TCP phone (tcp 1, tcp_policy reconnect) that accepts connections:
    while its flow is up the INVITE takes it; after the phone closed it, the
    proxy connects once to the phone's own Contact; a phone that does not
    answer there gets 480."""
    from sip_peer import SipPeer
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver,
                        modparams=[("tcp", 1), ("tcp_policy", '"reconnect"')])
    ip = harness.next_address()
    # the phone's Contact: a TCP listener that answers nothing by itself
    lsn = SipPeer("tcp", address=ip, port=5070, rules={"*": None})
    lsn.start()
    phone = phones(ip, k.address, 5060, tls=False)
    contact = "sip:1001@%s:5070;transport=tcp" % ip
    reg, ok = register(phone, k, sipserver, contact="<%s>;expires=600" % contact)
    assert uri_param(uri_of(reg.contacts()[0]), "gts")
    assert uri_of(ok.contacts()[0]) == contact
    [b] = env.bindings(k)
    assert b["transport"] == "tcp" and b["policy"] == "reconnect"

    call_phone(sipserver, k, uri_of(reg.contacts()[0]))
    inv = phone.recv(5, want=lambda m: m.method == "INVITE")
    phone.send(response(inv, 486, "Busy Here", to_tag="x"))
    assert final(sipserver).status == 486

    phone.close()
    assert env.wait_for(lambda: env.tcp_conns(k) == [], 5)
    time.sleep(1.5)       # a sweep ran: the binding stays (reconnect policy)
    assert len(env.bindings(k)) == 1
    call_phone(sipserver, k, uri_of(reg.contacts()[0]))
    inv = lsn.wait_for(lambda m: True, timeout=5,
                       what="a request over a new connection")[0]
    assert inv.method == "INVITE" and inv.ruri == contact
    lsn.send_to(response(inv, 486, "Busy Here", to_tag="y"), inv)
    assert final(sipserver).status == 486
    assert env.stats(k)["reconnect"] == 1
    lsn.stop()      # the connection and the listener closed

    # nobody listens on the Contact any more: 480
    assert env.wait_for(lambda: env.tcp_conns(k) == [], 5)
    call_phone(sipserver, k, uri_of(reg.contacts()[0]))
    rpl = final(sipserver, timeout=10)
    assert rpl.status == 480, rpl.text


def test_tcp_phone_no_inbound_policy(kamailio_factory, tmp_path, certs,
                                     sipserver, phones):
    """tcp 1 with the no-inbound policy given to sticky_register(): flow
    gone -> 430, no connection attempt."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver,
                        modparams=[("tcp", 1), ("tcp_policy", '"no-inbound"')])
    phone = phones(harness.next_address(), k.address, 5060, tls=False)
    reg, _ = register(phone, k, sipserver)
    assert env.bindings(k)[0]["policy"] == "no-inbound"
    phone.close()
    assert env.wait_for(lambda: env.bindings(k) == [], 5)
    call_phone(sipserver, k, uri_of(reg.contacts()[0]))
    assert final(sipserver).status == 430
    time.sleep(0.3)     # what is tested: no connection opened in that time
    assert env.tcp_conns(k) == []


# ------------------------------------------------------------- bad input

def test_not_sticky_transports_forwarded_unchanged(kamailio_factory, tmp_path,
                                                   certs, sipserver, phones):
    """A REGISTER over UDP, and over TCP while only TLS is sticky (default),
    reaches the registrar with the phone's own Contact; no binding."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    udp = UdpUA(harness.next_address(), 5060)
    try:
        own = "<sip:1002@%s:5060>;expires=300" % udp.ip
        udp.send(build("REGISTER sip:%s SIP/2.0" % k.address, [
            ("Via", udp.via()), ("Max-Forwards", "70"),
            ("From", "<sip:1002@%s>;tag=a" % k.address),
            ("To", "<sip:1002@%s>" % k.address), ("Call-ID", new_id()),
            ("CSeq", "1 REGISTER"), ("Contact", own)]), proxy_udp(k))
        reg = registrar_answer(sipserver)
        assert reg.contacts() == [own]
        assert udp.recv(5, want=lambda m: m.is_reply).status == 200
    finally:
        udp.close()
    tcp = phones(harness.next_address(), k.address, 5060, tls=False)
    reg, ok = register(tcp, k, sipserver)
    assert "gts=" not in reg.text
    assert env.bindings(k) == []


def test_bad_contacts_get_400(kamailio_factory, tmp_path, certs, sipserver,
                              phones):
    """Unparseable, oversized, too many Contacts: 400 from the proxy, nothing
    reaches the registrar, nothing is stored; duplicates get one binding."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver,
                        modparams=[("max_contacts", 4)])
    phone = phones(harness.next_address(), k.address, 5061)
    cases = {
        "unparseable": ["<sip:1001@%s:5061;transport=tls" % phone.local_ip],
        "oversized": ["<sip:%s@%s:5061;transport=tls>" % ("a" * 600, phone.local_ip)],
        "too many": ["<sip:%d@%s:5061;transport=tls>" % (i, phone.local_ip)
                     for i in range(5)],
    }
    for name, contacts in cases.items():
        phone.register(k.address, contacts=contacts)
        rpl = phone.recv(5, want=lambda m: m.is_reply)
        assert rpl.status == 400, (name, rpl.text)
    assert sipserver.nothing(0.3)
    assert env.bindings(k) == []

    dup = "<%s>;expires=60" % phone.contact_uri()
    reg, ok = register(phone, k, sipserver, contacts=[dup, dup])
    c1, c2 = reg.contacts()
    assert c1 == c2 and "gts=" in c1
    assert len(env.bindings(k)) == 1


def test_reply_listing_unknown_contacts(kamailio_factory, tmp_path, certs,
                                        sipserver, phones):
    """A 2xx listing Contacts we never saw (another device, another proxy's
    token) leaves them unchanged and restores ours."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5061)
    other = "<sip:1001@10.9.9.9:5060>;expires=100"
    foreign = "<sip:1001@10.8.8.8:5060;gts=AAAAthisIsNotOurs>;expires=100"
    phone.register(k.address, expires=300)
    registrar_answer(sipserver, extra_contacts=[other, foreign])
    ok = phone.recv(5, want=lambda m: m.is_reply)
    cs = ok.contacts()
    assert len(cs) == 3
    assert uri_of(cs[0]) == phone.contact_uri()
    assert cs[1] == other and cs[2] == foreign
    assert len(env.bindings(k)) == 1


# ------------------------------------------------------------ with SIPp

def test_sipp_sip_server_registers_and_calls_phone(kamailio_factory, tmp_path,
                                                   certs, sipp_factory, phones):
    """SIPp as SIP Server: as registrar it sees (and checks) the rewritten
    Contact; as caller it sends INVITE/ACK/BYE to that Contact through the
    proxy, and the TLS phone (listening on no port) answers over its own
    connection."""
    from types import SimpleNamespace
    registrar = sipp_factory("sticky_registrar.xml", "registrar").start()
    k = env.start_proxy(kamailio_factory, tmp_path, certs,
                        SimpleNamespace(ip=registrar.address, port=registrar.port))
    phone = phones(harness.next_address(), k.address, 5061)
    phone.register(k.address, expires=300)
    ok = phone.recv(5, want=lambda m: m.is_reply)
    res = registrar.wait()
    assert res.rc == 0 and res.successful == 1, res.screen
    [reg] = res.received("REGISTER ")
    contact = SipMsg(reg["text"].replace("\n", "\r\n")).contacts()[0]
    rewritten = uri_of(contact)
    assert rewritten.startswith("sip:1001@%s:5060;gts=" % k.address), contact
    assert ok.status == 200 and uri_of(ok.contacts()[0]) == phone.contact_uri()
    conns = env.tcp_conns(k)
    assert len(conns) == 1

    caller = sipp_factory("sticky_call_phone.xml", "caller",
                          remote="%s:5060" % k.address,
                          extra_args=["-key", "ruri", rewritten]).start()
    inv = phone.recv(10, want=lambda m: m.method == "INVITE")
    assert inv.ruri == phone.contact_uri()
    phone.send(response(inv, 200, "OK", to_tag="ph1",
                        contact="<%s>" % phone.contact_uri()))
    ack = phone.recv(5, want=lambda m: m.method == "ACK")
    bye = phone.recv(5, want=lambda m: m.method == "BYE")
    phone.send(response(bye, 200, "OK"))
    res = caller.wait()
    assert res.rc == 0 and res.successful == 1, res.screen
    assert ack.ruri == bye.ruri == phone.contact_uri()
    assert env.tcp_conns(k) == conns


# ------------------------------------------------ the reference configuration

def reference_tls_cfg(certs, path, mutual=False):
    text = (harness.TOP / "etc" / "tls.cfg").read_text()
    text = text.replace("/etc/kamailio/tls/proxy.key", str(certs.server_key))
    text = text.replace("/etc/kamailio/tls/proxy.pem", str(certs.server))
    text = text.replace("/etc/kamailio/tls/ca.pem", str(certs.ca))
    if mutual:
        # the documented tls-mutual switch
        text = text.replace("verify_certificate = no\nrequire_certificate = no",
                            "verify_certificate = yes\nrequire_certificate = yes")
        assert "verify_certificate = yes\nrequire_certificate = yes" in text
    path.write_text(text)
    return path


def forged_403_then_gone_430(sipserver, k, phone, rewritten):
    """the SIP Server calls the rewritten Contact with its token's end
    changed: 403; the phone closes its connection: its binding goes and the
    true Contact gets 430"""
    tok = uri_param(rewritten, "gts")
    call_phone(sipserver, k, rewritten.replace(tok, tok[:-3] + "AAA"))
    assert final(sipserver).status == 403
    phone.close()
    assert env.wait_for(lambda: env.bindings(k) == [], 5)
    call_phone(sipserver, k, rewritten)
    assert final(sipserver).status == 430


def registrar_pair():
    """a started pair of SIP Servers (ha_util.Peer) that answer REGISTER
    listing the Contacts they got; the backup does not answer OPTIONS"""
    import ha_util as hu

    class Registrar(hu.Peer):
        def _reply(self, lines, code, method):
            r = super()._reply(lines, code, method)
            if method == "REGISTER":
                cs = [ln for ln in lines if ln.lower().startswith(("contact:", "m:"))]
                r = r.replace(b"Content-Length: 0",
                              ("\r\n".join(cs) + "\r\nContent-Length: 0").encode(), 1)
            return r

    pri, bak = Registrar(), Registrar(options_code=None)
    pri.start()
    bak.start()
    return pri, bak


def start_reference(kamailio_factory, tmp_path, certs, sipserver, mutual=False,
                    extra=None):
    addr = harness.next_address()
    defines = {"WITH_TLS": None, "LISTEN_TLS": "tls:%s:5061" % addr,
               "TLS_CFG": '"%s"' % reference_tls_cfg(
                   certs, tmp_path / "tls.cfg", mutual),
               "REGISTRAR": '"sip:%s:%d"' % (sipserver.ip, sipserver.port),
               "STICKY_SECRET": '"%s"' % env.SECRET}
    defines.update(extra or {})
    return kamailio_factory(name="ref", address=addr, defines=defines)


def test_reference_config_with_tls(kamailio_factory, tmp_path, certs, sipserver,
                                   phones):
    """etc/kamailio.cfg -A WITH_TLS with etc/tls.cfg: the reference hooks
    register the phone, reach it over its connection (INVITE, ACK, BYE from
    the SIP Server), refuse a forged token and answer 430 once it is gone."""
    k = start_reference(kamailio_factory, tmp_path, certs, sipserver,
                        extra={"REGISTRAR_DEFAULT_TIMEOUT": "1800"})
    phone = phones(harness.next_address(), k.address, 5061)
    reg, ok = register(phone, k, sipserver, expires=3600)
    rewritten = uri_of(reg.contacts()[0])
    assert "gts=" in rewritten and hdr_param(reg.contacts()[0], "expires") == "1800"
    assert uri_of(ok.contacts()[0]) == phone.contact_uri()

    sipserver_hangs_up(sipserver, k, phone,
                       sipserver_calls(sipserver, k, phone, rewritten))

    forged_403_then_gone_430(sipserver, k, phone, rewritten)
    assert env.tcp_conns(k) == []


def test_reference_tls_cfg_mutual_switch(kamailio_factory, tmp_path, certs,
                                         sipserver):
    """etc/tls.cfg with its documented tls-mutual switch flipped."""
    k = start_reference(kamailio_factory, tmp_path, certs, sipserver, mutual=True)
    assert not tls_handshake_and_register(k, sipserver, client_context())
    assert tls_handshake_and_register(
        k, sipserver, client_context(cert=str(certs.client), key=str(certs.client_key)))


def test_missing_or_weak_secret_stops_startup(tmp_path):
    for secret, why in ((None, "missing"), ('"short"', "too short")):
        cfg = env.render_cfg(tls=False).replace(
            'modparam("genesys_tlssticky", "secret", "%s")' % env.SECRET,
            "" if secret is None else
            'modparam("genesys_tlssticky", "secret", %s)' % secret)
        k = harness.Kamailio(tmp_path / why.replace(" ", "_"), cfg_text=cfg,
                             defines={"REGISTRAR": '"sip:127.0.0.1:5060"'})
        with pytest.raises(harness.HarnessError) as e:
            k.start()
        k.stop(check=False)
        assert 'modparam "secret" is %s' % why in str(e.value)


def test_bad_modparams_stop_startup(tmp_path):
    for name, value, msg in (
            ("hash_size", "1000", 'modparam "hash_size" = 1000 must be a power of two'),
            ("tls_policy", '"sometimes"', 'modparam "tls_policy" = "sometimes" is invalid'),
            ("registrar_default_timeout", "-5", 'modparam "registrar_default_timeout" = -5 is out of range'),
            ("contact_socket", '"udp:10.255.255.1:5060"', "is not a listen socket")):
        cfg = env.render_cfg(modparams=[(name, value)], tls=False)
        k = harness.Kamailio(tmp_path / name, cfg_text=cfg,
                             defines={"REGISTRAR": '"sip:127.0.0.1:5060"'})
        with pytest.raises(harness.HarnessError) as e:
            k.start()
        k.stop(check=False)
        assert msg in str(e.value), name


def test_closed_event_from_tcpops(kamailio_factory, tmp_path, certs, sipserver,
                                  phones):
    """With tcpops owning the connection-closed event (tcp_closed_hook 0),
    sticky_flow_closed() in event_route[tcp:closed] removes the
    bindings of the closed connection."""
    k = env.start_proxy(
        kamailio_factory, tmp_path, certs, sipserver,
        modparams=[("tcp_closed_hook", 0)],
        extra_modules='loadmodule "tcpops"\nmodparam("tcpops", "closed_event", 1)',
        extra_routes='event_route[tcp:closed] {\n'
                     '\txlog("L_INFO", "tcp closed $conid\\n");\n'
                     '\tsticky_flow_closed();\n}\n')
    phone = phones(harness.next_address(), k.address, 5061)
    register(phone, k, sipserver)
    assert len(env.bindings(k)) == 1
    phone.close()
    k.wait_log(r"tcp closed")
    assert env.wait_for(lambda: env.bindings(k) == [], 5)
    k.wait_log(r"sticky binding removed \(connection closed\)")


# ------------------------------------------------------ registration details

def test_challenge_then_register_keeps_one_token(kamailio_factory, tmp_path,
                                                 certs, sipserver, phones):
    """SIP Server challenges (401), the phone retries with credentials: the
    retry carries the same rewritten Contact, one binding results."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5061)
    phone.register(k.address, cseq=1, call_id="chal-1")
    reg1 = sipserver.recv(5, want=lambda m: m.method == "REGISTER")
    sipserver.send(response(reg1, 401, "Unauthorized", to_tag="r", extra=[
        ("WWW-Authenticate", 'Digest realm="genesys", nonce="abc"')],
        record_route=False), reg1.src)
    assert phone.recv(5, want=lambda m: m.is_reply).status == 401
    assert env.bindings(k)[0]["state"] == "pending"
    phone.register(k.address, cseq=2, call_id="chal-1", extra=[
        ("Authorization", 'Digest username="1001", realm="genesys", '
         'nonce="abc", uri="sip:x", response="0123456789abcdef"')])
    reg2 = registrar_answer(sipserver)
    assert phone.recv(5, want=lambda m: m.is_reply).status == 200
    assert reg2.contacts() == reg1.contacts()
    assert reg2.hdr("Authorization").startswith("Digest username=\"1001\"")
    [b] = env.bindings(k)
    assert b["state"] == "active"


def test_two_contacts_and_contact_star(kamailio_factory, tmp_path, certs,
                                       sipserver, phones):
    """Two Contacts in one REGISTER: two bindings, both reachable; the
    registrar dropping one (expires=0 in its 2xx) removes it; Contact: *
    with Expires: 0 removes all of the AOR."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5061)
    c1 = "<sip:1001@%s:5061;transport=tls>;expires=300" % phone.local_ip
    c2 = "<sip:1001-b@%s:5062;transport=tls>;expires=300" % phone.local_ip
    reg, ok = register(phone, k, sipserver, contacts=[c1, c2])
    r1, r2 = [uri_of(c) for c in reg.contacts()]
    assert uri_param(r1, "gts") != uri_param(r2, "gts")
    assert r2.startswith("sip:1001-b@%s:5060;" % k.address)
    assert [uri_of(c) for c in ok.contacts()] == [uri_of(c1), uri_of(c2)]
    assert len(env.bindings(k)) == 2
    call_phone(sipserver, k, r2)
    inv = phone.recv(5, want=lambda m: m.method == "INVITE")
    assert inv.ruri == uri_of(c2)
    phone.send(response(inv, 486, "Busy Here", to_tag="x"))
    final(sipserver)

    # refresh: the registrar answers with the first one expired
    phone.register(k.address, contacts=[c1, c2])
    reg = sipserver.recv(5, want=lambda m: m.method == "REGISTER")
    a, b = reg.contacts()
    sipserver.send(response(reg, 200, "OK", to_tag="r", record_route=False, extra=[
        ("Contact", re.sub(r"expires=\d+", "expires=0", a)), ("Contact", b)]),
        reg.src)
    ok = phone.recv(5, want=lambda m: m.is_reply)
    # both restored for the phone, the dropped one with expires=0
    assert [uri_of(c) for c in ok.contacts()] == [uri_of(c1), uri_of(c2)]
    assert hdr_param(ok.contacts()[0], "expires") == "0"
    [left] = env.bindings(k)
    assert left["contact"] == uri_of(c2)

    # Contact: * -> nothing left
    phone.register(k.address, expires=0, contacts=["*"])
    reg = sipserver.recv(5, want=lambda m: m.method == "REGISTER")
    assert reg.contacts() == ["*"]
    sipserver.send(response(reg, 200, "OK", to_tag="r", record_route=False),
                   reg.src)
    phone.recv(5, want=lambda m: m.is_reply)
    assert env.bindings(k) == []
    call_phone(sipserver, k, r2)
    assert final(sipserver).status == 430


# ------------------------------------------------------------------- KEMI

KEMI_JS = r"""
function ksr_request_route() {
	if (KSR.is_CANCEL() || KSR.hdr.is_present("To") < 0) { return; }
	if (KSR.siputils.has_totag() > 0) {
		if (KSR.rr.loose_route() > 0) {
			var rc = KSR.genesys_tlssticky.sticky_route();
			if (rc == -3) { KSR.sl.send_reply(430, "Flow Failed"); return; }
			KSR.tm.t_relay();
		} else if (KSR.is_ACK()) {
			KSR.tm.t_relay();
		}
		return;
	}
	if (KSR.is_REGISTER()) {
		var r = KSR.genesys_tlssticky.sticky_register_policy("no-inbound");
		KSR.info("kemi sticky_register " + r + "\n");
		if (r == -2) { KSR.sl.send_reply(400, "Bad Contact"); return; }
		KSR.tm.t_on_reply("ksr_sticky_reply");
		KSR.pv.sets("$du", "REGISTRAR_URI");
		KSR.tm.t_relay();
		return;
	}
	var s = KSR.genesys_tlssticky.sticky_route();
	KSR.info("kemi sticky_route " + s + "\n");
	if (s == -2) { KSR.sl.send_reply(403, "Invalid Flow Token"); return; }
	if (s == -3) { KSR.sl.send_reply(430, "Flow Failed"); return; }
	if (s == 1 && KSR.is_INVITE()) { KSR.rr.record_route(); }
	if (s == -1 && KSR.is_INVITE()) {
		KSR.rr.record_route();
		KSR.genesys_tlssticky.sticky_rr();
	}
	KSR.tm.t_relay();
}

function ksr_sticky_reply() {
	if (KSR.pv.get("$rs") == "200") {
		KSR.genesys_tlssticky.sticky_reply();
	}
}
"""


def test_kemi_exports(kamailio_factory, tmp_path, certs, sipserver, phones):
    """The KEMI functions (here from JavaScript, app_jsdt) register a phone,
    reach it over its connection, refuse a forged token and answer 430 once
    the flow is gone."""
    js = tmp_path / "sticky.js"
    js.write_text(KEMI_JS.replace("REGISTRAR_URI", "sip:%s:%d" % (sipserver.ip, sipserver.port)))
    cfg = env.render_cfg().split("request_route {")[0] + \
        'loadmodule "app_jsdt"\nmodparam("app_jsdt", "load", "%s")\ncfgengine "jsdt"\n' % js
    addr = harness.next_address()
    (tmp_path / "tls.cfg").write_text(env.tls_cfg(certs))
    k = kamailio_factory(name="kemi", address=addr, cfg_text=cfg, defines={
        "LISTEN_TLS": "tls:%s:5061" % addr,
        "TLS_CFG": '"%s"' % (tmp_path / "tls.cfg"),
        "REGISTRAR": '"sip:%s:%d"' % (sipserver.ip, sipserver.port)})
    phone = phones(harness.next_address(), k.address, 5061)
    reg, ok = register(phone, k, sipserver)
    rewritten = uri_of(reg.contacts()[0])
    assert "gts=" in rewritten and uri_of(ok.contacts()[0]) == phone.contact_uri()
    assert env.bindings(k)[0]["policy"] == "no-inbound"
    call_phone(sipserver, k, rewritten)
    inv = phone.recv(5, want=lambda m: m.method == "INVITE")
    assert inv.ruri == phone.contact_uri()
    phone.send(response(inv, 486, "Busy Here", to_tag="x"))
    assert final(sipserver).status == 486
    forged_403_then_gone_430(sipserver, k, phone, rewritten)
    # the JavaScript routing really ran
    for line in ("kemi sticky_register 1", "kemi sticky_route 1",
                 "kemi sticky_route -2", "kemi sticky_route -3"):
        k.wait_log(re.escape(line))


# ------------------------------------------- with the HA pool (full reference)

def test_phone_through_ha_pool(kamailio_factory, tmp_path, certs, phones):
    """The full reference config with a pool file: the phone's REGISTER
    (TLS) goes to the active SIP Server of the pair with the rewritten
    Contact; that SIP Server's INVITE to the Contact reaches the phone over
    its own connection; after a switchover the promoted backup reaches it
    the same way (the token does not depend on which member sends)."""
    import threading
    import ha_util as hu

    pri, bak = registrar_pair()
    try:
        pool = hu.write_pool(tmp_path / "pool.xml",
                             [("SIPS_A", pri.uri, bak.uri, None)])
        addr = harness.next_address()
        k = hu.start_proxy(kamailio_factory, pool, address=addr, defines={
            "WITH_TLS": None, "LISTEN_TLS": "tls:%s:5061" % addr,
            "TLS_CFG": '"%s"' % reference_tls_cfg(certs, tmp_path / "tls.cfg"),
            "STICKY_SECRET": '"%s"' % env.SECRET})
        hu.wait_pool(k, lambda p: p["SIPS_A"]["members"]["primary"]["state"] == "active",
                     what="primary active")
        phone = phones(harness.next_address(), k.address, 5061)
        phone.register(k.address, expires=600)
        ok = phone.recv(5, want=lambda m: m.is_reply and m.status >= 200)
        assert ok.status == 200 and uri_of(ok.contacts()[0]) == phone.contact_uri(), ok.text
        [reg] = pri.requests("REGISTER")
        rewritten = uri_of(SipMsg(reg).contacts()[0])
        assert rewritten.startswith("sip:1001@%s:5060;gts=" % k.address), reg
        assert env.bindings(k)[0]["state"] == "active"

        def ring_busy(result):
            inv = phone.recv(5, want=lambda m: m.method == "INVITE")
            result.append(inv)
            phone.send(response(inv, 486, "Busy Here", to_tag="x"))

        for sender in (pri, bak):
            if sender is bak:
                # primary stops answering: the backup is promoted
                pri.options_code = None
                bak.options_code = 200
                hu.wait_pool(k, lambda p: p["SIPS_A"]["active"] == "backup",
                             timeout=10, what="backup active")
            got = []
            t = threading.Thread(target=ring_busy, args=(got,))
            t.start()
            r = sender.send_request((k.address, 5060), "INVITE", rewritten, wait=5)
            t.join(6)
            assert r and r.startswith("SIP/2.0 486"), r
            assert got and got[0].ruri == phone.contact_uri()
        assert len(env.tcp_conns(k)) == 1
    finally:
        pri.stop()
        bak.stop()


def test_registrar_listing_no_contacts(kamailio_factory, tmp_path, certs,
                                       sipserver, phones):
    """A registrar whose 2xx lists no Contact: what the REGISTER asked for is
    granted (capped), the phone is reachable, a later Expires: 0 removes
    the binding, and Contact: * removes every binding of the AOR."""
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver,
                        modparams=[("registrar_default_timeout", 300)])
    phone = phones(harness.next_address(), k.address, 5061)

    def bare_200(expect_contacts=True):
        reg = sipserver.recv(5, want=lambda m: m.method == "REGISTER")
        sipserver.send(response(reg, 200, "OK", to_tag="r", record_route=False),
                       reg.src)
        ok = phone.recv(5, want=lambda m: m.is_reply)
        assert ok.status == 200 and ok.contacts() == []
        return reg

    phone.register(k.address, expires=3600)
    reg = bare_200()
    [b] = env.bindings(k)
    assert b["state"] == "active" and 290 <= b["expires"] <= 300
    call_phone(sipserver, k, uri_of(reg.contacts()[0]))
    inv = phone.recv(5, want=lambda m: m.method == "INVITE")
    phone.send(response(inv, 486, "Busy Here", to_tag="x"))
    assert final(sipserver).status == 486

    phone.register(k.address, expires=0,
                   contact="<%s>;expires=0" % phone.contact_uri(), cseq=2)
    bare_200()
    assert env.bindings(k) == []

    phone.register(k.address, expires=600, cseq=3)
    bare_200()
    assert len(env.bindings(k)) == 1
    phone.register(k.address, expires=0, contacts=["*"], cseq=4)
    bare_200()
    assert env.bindings(k) == []


def test_sip_server_and_phone_on_one_address(kamailio_factory, tmp_path, certs,
                                             phones):
    """A lab with SIP Server (UDP) and the phone (TLS) on one IP address: the
    SIP Server's BYE is still recognised as going toward the phone."""
    ip = harness.next_address()
    sipserver = UdpUA(ip, 5060)
    try:
        k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
        phone = phones(ip, k.address, 5061)
        reg, _ = register(phone, k, sipserver)
        dlg = sipserver_calls(sipserver, k, phone, uri_of(reg.contacts()[0]))
        sipserver_hangs_up(sipserver, k, phone, dlg)
        assert len(env.tcp_conns(k)) == 1
    finally:
        sipserver.close()


def test_max_bindings_and_contact_socket(kamailio_factory, tmp_path, certs,
                                         sipserver, phones):
    """contact_socket names the socket SIP Server uses (here TCP: the
    rewritten Contact says transport=tcp); max_bindings: a REGISTER that
    would exceed it gets 503 and nothing is forwarded."""
    addr = harness.next_address()
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver, address=addr,
                        modparams=[("max_bindings", 1),
                                   ("contact_socket", '"tcp:%s:5060"' % addr)])
    phone = phones(harness.next_address(), k.address, 5061)
    reg, ok = register(phone, k, sipserver)
    c = uri_of(reg.contacts()[0])
    assert c.startswith("sip:1001@%s:5060;transport=tcp;gts=" % addr), c
    other = phones(harness.next_address(), k.address, 5061, user="1002")
    other.register(k.address)
    assert other.recv(5, want=lambda m: m.is_reply).status == 503
    assert sipserver.nothing(0.3)
    assert len(env.bindings(k)) == 1
    k.wait_log(r"binding table full \(max_bindings=1\)")
