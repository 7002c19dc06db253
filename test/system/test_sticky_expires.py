"""registrar-default-timeout (seed 001) whatever the transport: the lesser
of the option and the client's value in the REGISTER SIP Server receives and
in the 200 OK the endpoint receives, for the Expires header and every
Contact's expires parameter.

The phone registers over UDP, TCP and TLS through the reference
etc/kamailio.cfg (TCP and TLS phones are sticky there, UDP ones are not),
and over TCP through a proxy where only TLS is sticky.  The registrar (a
UDP peer) grants more than asked, or nothing explicit, so the 200 OK has to
be capped by the proxy too."""

import re

import pytest

import harness
import sticky_env as env
from tls_ua import (UdpUA, build, hdr_param, new_id, response, uri_of)
from test_sticky import (certs, sipserver, phones, start_reference)  # noqa: F401 (fixtures)

CAP = 600


class Phone:
    """a phone on one transport: a UDP socket, or one TCP/TLS connection"""

    def __init__(self, kind, k, phones):
        self.kind = kind
        if kind == "udp":
            self.ua = UdpUA(harness.next_address(), 5060)
            self.ip, self.port = self.ua.ip, 5060
        else:
            self.ua = phones(harness.next_address(), k.address,
                             5061 if kind == "tls" else 5060,
                             tls=(kind == "tls"))
            self.ip, self.port = self.ua.local_ip, 5061
        self.k = k
        self.cseq = 0
        self.call_id = new_id("reg")

    def close(self):
        if self.kind == "udp":
            self.ua.close()

    def contact(self, user, params=""):
        tp = "" if self.kind == "udp" else ";transport=%s" % self.kind[:3]
        return "<sip:%s@%s:%d%s>%s" % (user, self.ip, self.port, tp, params)

    def register(self, contacts, expires_hdr):
        """contacts: Contact header values (one may hold several, comma
        separated); expires_hdr: the Expires header or None"""
        self.cseq += 1
        aor = "sip:1001@%s" % self.k.address
        hs = [("Via", self.ua.via()), ("Max-Forwards", "70"),
              ("From", "<%s>;tag=%s" % (aor, new_id("t"))),
              ("To", "<%s>" % aor), ("Call-ID", self.call_id),
              ("CSeq", "%d REGISTER" % self.cseq)]
        hs += [("Contact", c) for c in contacts]
        if expires_hdr is not None:
            hs.append(("Expires", str(expires_hdr)))
        text = build("REGISTER sip:%s SIP/2.0" % self.k.address, hs)
        if self.kind == "udp":
            self.ua.send(text, (self.k.address, 5060))
        else:
            self.ua.send(text)

    def reply(self):
        return self.ua.recv(5, want=lambda m: m.is_reply
                            and m.method == "REGISTER" and m.status >= 200)


def registrar_grants(sipserver, grants, expires_hdr, others=()):
    """the registrar takes the REGISTER and answers 200 listing its Contacts
    with the expires it grants (None: no parameter), then the AOR's other
    Contacts (others) and an Expires header (None: none); returns the
    REGISTER it received"""
    reg = sipserver.recv(5, want=lambda m: m.method == "REGISTER"
                         and not m.is_reply)
    cs = reg.contacts()
    assert len(cs) == len(grants), reg.text
    hs = []
    for c, g in zip(cs, grants):
        c = re.sub(r";\s*expires\s*=\s*\d+", "", c)
        hs.append(("Contact", c if g is None else "%s;expires=%d" % (c, g)))
    hs += [("Contact", c) for c in others]
    if expires_hdr is not None:
        hs.append(("Expires", str(expires_hdr)))
    sipserver.send(response(reg, 200, "OK", to_tag=new_id("r"), extra=hs,
                            record_route=False), reg.src)
    return reg


def expires_seen(msg):
    """(Expires header or None, [each Contact's expires parameter or None],
    [each Contact's effective expiry: its parameter, else the header])"""
    h = msg.hdr("Expires")
    h = int(h) if h is not None else None
    params = []
    for c in msg.contacts():
        p = hdr_param(c, "expires")
        params.append(int(p) if p is not None else None)
    return h, params, [p if p is not None else h for p in params]


def check_capped(msg, effective):
    """every value in msg is at most CAP and each Contact's effective expiry
    is what is expected"""
    h, params, eff = expires_seen(msg)
    assert h is None or h <= CAP, msg.text
    assert all(p is None or p <= CAP for p in params), msg.text
    assert eff == effective, msg.text


def start(kind, kamailio_factory, tmp_path, certs, sipserver):
    if kind == "tcp-not-sticky":
        # only TLS is sticky (modparam "tcp" 0): TCP Contacts not rewritten
        return env.start_proxy(kamailio_factory, tmp_path, certs, sipserver,
                               modparams=[("registrar_default_timeout", CAP)])
    return start_reference(kamailio_factory, tmp_path, certs, sipserver,
                           extra={"REGISTRAR_DEFAULT_TIMEOUT": str(CAP)})


@pytest.mark.parametrize("kind", ["udp", "tcp", "tls", "tcp-not-sticky"])
def test_registrar_default_timeout_every_transport(kind, kamailio_factory,
                                                   tmp_path, certs, sipserver,
                                                   phones):
    k = start(kind, kamailio_factory, tmp_path, certs, sipserver)
    phone = Phone("tcp" if kind == "tcp-not-sticky" else kind, k, phones)
    sticky = kind in ("tcp", "tls")
    try:
        # 1. one Contact, 3600 in the parameter and the header; the
        #    registrar grants 3600 anyway and lists two other devices of the
        #    AOR (3600, and no parameter), the second through another proxy
        phone.register([phone.contact("1001", ";expires=3600")], 3600)
        others = ["<sip:1001@10.9.9.9:5060>;expires=3600",
                  "<sip:1001@10.8.8.8:5060;gts=AAAAnotOurs>"]
        reg = registrar_grants(sipserver, [3600], 3600, others)
        check_capped(reg, [CAP])
        assert expires_seen(reg)[:2] == (CAP, [CAP])
        assert ("gts=" in reg.text) == sticky
        ok = phone.reply()
        check_capped(ok, [CAP, CAP, CAP])
        # the header says CAP, so the Contact without a parameter needs none
        assert expires_seen(ok)[:2] == (CAP, [CAP, CAP, None])
        assert [uri_of(c) for c in ok.contacts()] == [
            uri_of(phone.contact("1001"))] + [uri_of(c) for c in others]

        # 2. three Contacts (two in one header): 3600, 300 (kept: smaller),
        #    none (the header, 7200, applies); the registrar grants 3600,
        #    300 and no parameter with Expires: 3600
        phone.register([phone.contact("1001", ";expires=3600") + ", "
                        + phone.contact("1001-b", ";expires=300"),
                        phone.contact("1001-c")], 7200)
        reg = registrar_grants(sipserver, [3600, 300, None], 3600)
        check_capped(reg, [CAP, 300, CAP])
        assert expires_seen(reg)[0] == CAP
        assert expires_seen(reg)[1][:2] == [CAP, 300]
        ok = phone.reply()
        check_capped(ok, [CAP, 300, CAP])
        assert expires_seen(ok)[0] == CAP
        assert [uri_of(c) for c in ok.contacts()] == [
            uri_of(phone.contact(u)) for u in ("1001", "1001-b", "1001-c")]

        # 3. no Expires header: Contacts without a parameter, with 3600 and
        #    with 100; the registrar answers without any expires for the
        #    first and without a header: the cap is written where nothing
        #    was said, 100 is kept
        phone.register([phone.contact("1001"),
                        phone.contact("1001-b", ";expires=3600"),
                        phone.contact("1001-c", ";expires=100")], None)
        reg = registrar_grants(sipserver, [None, 3600, 100], None)
        assert expires_seen(reg) == (None, [CAP, CAP, 100], [CAP, CAP, 100])
        ok = phone.reply()
        assert expires_seen(ok) == (None, [CAP, CAP, 100], [CAP, CAP, 100])

        # 4. a smaller client value in the header only is kept both ways
        phone.register([phone.contact("1001")], 100)
        reg = registrar_grants(sipserver, [100], 100)
        check_capped(reg, [100])
        assert expires_seen(reg)[0] == 100
        ok = phone.reply()
        check_capped(ok, [100])

        # 5. de-registration (Expires: 0) stays 0
        phone.register([phone.contact("1001")], 0)
        reg = registrar_grants(sipserver, [0], 0)
        check_capped(reg, [0])
        check_capped(phone.reply(), [0])
    finally:
        phone.close()
