"""genesys_tlssticky: requests already relayed to a phone when its connection
closes get their final reply at once (430 Flow Failed; 480 for a phone with
the reconnect policy), not tm's 408 after fr_timer (30 s) or fr_inv_timer
(120 s).  Through the reference etc/kamailio.cfg with TLS on the wire; the
SIP Server is a UDP peer."""

import time

import harness
import sticky_env as env
from tls_ua import build, in_dialog, new_id, response, uri_of
from test_sticky import (certs, sipserver, phones, register, call_phone,  # noqa: F401 (fixtures)
                         final, proxy_udp, sipserver_calls, start_reference)

# the bound: final reply within 1 s of the close
BOUND = 1.0


def tls_phone(kamailio_factory, tmp_path, certs, sipserver, phones):
    k = start_reference(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5061)
    reg, _ = register(phone, k, sipserver)
    return k, phone, uri_of(reg.contacts()[0])


def no_more_replies(sipserver, call_id, timeout=1.5):
    """nothing more for this call (a retransmitted or late final reply)"""
    return sipserver.nothing(timeout, want=lambda m: m.is_reply
                             and m.hdr("Call-ID") == call_id)


def close_and_time_final(sipserver, phone):
    """the phone closes its connection; the SIP Server's final reply to its
    INVITE and how long after the close it came"""
    t0 = time.monotonic()
    phone.close()
    rpl = final(sipserver, timeout=BOUND + 0.5)
    return rpl, time.monotonic() - t0


def test_unanswered_invite_gets_430_at_once(kamailio_factory, tmp_path, certs,
                                            sipserver, phones):
    """The phone receives the INVITE and closes its connection without
    answering: 430 within 1 s (was 408 after 30 s), nothing after it."""
    k, phone, rewritten = tls_phone(kamailio_factory, tmp_path, certs,
                                    sipserver, phones)
    inv0 = call_phone(sipserver, k, rewritten)
    phone.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    rpl, took = close_and_time_final(sipserver, phone)
    assert rpl.status == 430, rpl.text
    assert rpl.first == "SIP/2.0 430 Flow Failed"
    assert took < BOUND, took
    # a To tag, as any final reply to an INVITE (the ACK matched it)
    assert ";tag=" in rpl.hdr("To")
    assert no_more_replies(sipserver, inv0.hdr("Call-ID"))
    k.wait_log(r"flow gone: INVITE in flight to the phone over connection "
               r"\d+ \(last reply 0\) answered 430 at once")
    # the proxy goes on: the next call for the phone gets 430 at once too
    call_phone(sipserver, k, rewritten)
    assert final(sipserver, timeout=BOUND).status == 430
    assert env.stats(k)["flow_failed"] == 2


def test_ringing_invite_gets_430_at_once(kamailio_factory, tmp_path, certs,
                                         sipserver, phones):
    """The phone rings (180) then its connection closes: 430 within 1 s
    (was 408 after fr_inv_timer, 120 s)."""
    k, phone, rewritten = tls_phone(kamailio_factory, tmp_path, certs,
                                    sipserver, phones)
    inv0 = call_phone(sipserver, k, rewritten)
    inv = phone.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    phone.send(response(inv, 180, "Ringing", to_tag="ring1"))
    assert sipserver.recv(5, want=lambda m: m.is_reply and m.status == 180)
    rpl, took = close_and_time_final(sipserver, phone)
    assert rpl.status == 430, rpl.text
    assert took < BOUND, took
    assert no_more_replies(sipserver, inv0.hdr("Call-ID"))
    k.wait_log(r"answered 430 at once")


def test_bye_in_flight_gets_430_at_once(kamailio_factory, tmp_path, certs,
                                        sipserver, phones):
    """An in-dialog request (the SIP Server's BYE) relayed to the phone when
    its connection closes: 430 within 1 s (was 408 after 30 s)."""
    k, phone, rewritten = tls_phone(kamailio_factory, tmp_path, certs,
                                    sipserver, phones)
    dlg = sipserver_calls(sipserver, k, phone, rewritten)
    sipserver.send(in_dialog("BYE", dlg, sipserver.via(), 2), proxy_udp(k))
    phone.recv(5, want=lambda m: m.method == "BYE" and not m.is_reply)
    t0 = time.monotonic()
    phone.close()
    rpl = sipserver.recv(BOUND + 0.5, want=lambda m: m.is_reply
                         and m.method == "BYE")
    assert rpl.status == 430, rpl.text
    assert time.monotonic() - t0 < BOUND
    assert no_more_replies(sipserver, dlg["call_id"])


def test_several_requests_and_other_flows(kamailio_factory, tmp_path, certs,
                                          sipserver, phones):
    """Two calls in flight over one phone's flow both get 430 when it
    closes; a call in flight to another phone is not touched and completes
    normally."""
    k, phone, rewritten = tls_phone(kamailio_factory, tmp_path, certs,
                                    sipserver, phones)
    other = phones(harness.next_address(), k.address, 5061, user="1002")
    reg2, _ = register(other, k, sipserver)
    inv_a = sipserver.invite(rewritten, proxy_udp(k))
    inv_b = sipserver.invite(rewritten, proxy_udp(k))
    inv_o = sipserver.invite(uri_of(reg2.contacts()[0]), proxy_udp(k),
                             to_user="1002")
    for _ in range(2):
        phone.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    oinv = other.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    t0 = time.monotonic()
    phone.close()
    got = {}
    while len(got) < 2:
        m = sipserver.recv(BOUND + 0.5, want=lambda m: m.is_reply
                           and m.status >= 200)
        got[m.hdr("Call-ID")] = m.status
    assert time.monotonic() - t0 < BOUND
    assert got == {inv_a.hdr("Call-ID"): 430, inv_b.hdr("Call-ID"): 430}
    # the other phone's call is still in progress and ends normally
    assert no_more_replies(sipserver, inv_o.hdr("Call-ID"), 0.5)
    other.send(response(oinv, 486, "Busy Here", to_tag="o1"))
    rpl = sipserver.recv(5, want=lambda m: m.is_reply
                         and m.hdr("Call-ID") == inv_o.hdr("Call-ID"))
    assert rpl.status == 486


def test_reconnect_policy_gets_480_at_once(kamailio_factory, tmp_path, certs,
                                           sipserver, phones):
    """A TCP phone (reference cfg: reconnect policy) whose connection closes
    while an INVITE waits for its answer: 480 at once (the reconnect
    policy's failure outcome; the request is not sent a second time)."""
    k = start_reference(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5060, tls=False)
    contact = "sip:1001@%s:5070;transport=tcp" % phone.local_ip
    reg, _ = register(phone, k, sipserver, contact="<%s>;expires=600" % contact)
    call_phone(sipserver, k, uri_of(reg.contacts()[0]))
    phone.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    rpl, took = close_and_time_final(sipserver, phone)
    assert rpl.status == 480, rpl.text
    assert took < BOUND, took


def test_answered_before_close_untouched(kamailio_factory, tmp_path, certs,
                                         sipserver, phones):
    """A request the phone answered (final reply) before closing is not
    answered again: only its own 486 reaches the SIP Server."""
    k, phone, rewritten = tls_phone(kamailio_factory, tmp_path, certs,
                                    sipserver, phones)
    inv0 = call_phone(sipserver, k, rewritten)
    inv = phone.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    phone.send(response(inv, 486, "Busy Here", to_tag="b1"))
    assert final(sipserver).status == 486
    phone.recv(5, want=lambda m: m.method == "ACK")
    phone.close()
    assert no_more_replies(sipserver, inv0.hdr("Call-ID"))
    assert "answered 430 at once" not in k.log_text()


def test_many_phones_close_at_once(kamailio_factory, tmp_path, certs,
                                   sipserver, phones):
    """40 TLS phones each with an INVITE in flight close their connections
    together (more than one batch of the closed-flow timer): every INVITE
    gets 430 within 1 s of the last close, exactly once."""
    k = start_reference(kamailio_factory, tmp_path, certs, sipserver)
    made = []
    for i in range(40):
        p = phones(harness.next_address(), k.address, 5061,
                   user="%d" % (2000 + i))
        reg, _ = register(p, k, sipserver)
        made.append((p, uri_of(reg.contacts()[0])))
    call_ids = set()
    for p, ruri in made:
        inv = sipserver.invite(ruri, proxy_udp(k), to_user=p.user)
        call_ids.add(inv.hdr("Call-ID"))
        p.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    for p, _ in made:
        p.close()
    t0 = time.monotonic()
    finals = {}
    while len(finals) < len(call_ids):
        m = sipserver.recv(BOUND + 0.5, want=lambda m: m.is_reply
                           and m.status >= 200)
        # not ACKed here: a retransmission of the same 430 may come
        assert finals.setdefault(m.hdr("Call-ID"), m.status) == m.status
    assert time.monotonic() - t0 < BOUND
    assert set(finals) == call_ids and set(finals.values()) == {430}
    assert env.stats(k)["flow_failed"] == 40


def test_closed_event_from_tcpops(kamailio_factory, tmp_path, certs, sipserver,
                                  phones):
    """With tcpops owning the connection-closed event (tcp_closed_hook 0),
    sticky_flow_closed() in event_route[tcp:closed] ends the requests in
    flight too; with inflight_max 0 they are left to tm (no 430 at once)."""
    for inflight_max, want in ((16, 430), (0, None)):
        k = env.start_proxy(
            kamailio_factory, tmp_path, certs, sipserver,
            name="proxy%d" % inflight_max,
            modparams=[("tcp_closed_hook", 0),
                       ("inflight_max", inflight_max)],
            extra_modules='loadmodule "tcpops"\n'
                          'modparam("tcpops", "closed_event", 1)',
            extra_routes='event_route[tcp:closed] {\n'
                         '\tsticky_flow_closed();\n}\n')
        phone = phones(harness.next_address(), k.address, 5061)
        reg, _ = register(phone, k, sipserver)
        call_phone(sipserver, k, uri_of(reg.contacts()[0]))
        phone.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
        if want:
            rpl, took = close_and_time_final(sipserver, phone)
            assert rpl.status == want and took < BOUND, (rpl.text, took)
        else:
            phone.close()
            assert sipserver.nothing(BOUND + 0.5, want=lambda m: m.is_reply
                                     and m.status >= 200)
        k.stop()


def test_no_stray_reply_after_tm_timers(kamailio_factory, tmp_path, certs,
                                        sipserver, phones):
    """After the 430 nothing more comes when tm's own timers would have
    fired (fr_timer 1 s, fr_inv_timer 2 s here: no late 408), and tm frees
    the transactions (tm.stats current 0)."""
    k = env.start_proxy(
        kamailio_factory, tmp_path, certs, sipserver,
        extra_modules='modparam("tm", "fr_timer", 1000)\n'
                      'modparam("tm", "fr_inv_timer", 2000)\n'
                      'modparam("tm", "wt_timer", 1000)')
    phone = phones(harness.next_address(), k.address, 5061)
    reg, _ = register(phone, k, sipserver)
    inv0 = call_phone(sipserver, k, uri_of(reg.contacts()[0]))
    inv = phone.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    phone.send(response(inv, 180, "Ringing", to_tag="r2"))
    sipserver.recv(5, want=lambda m: m.is_reply and m.status == 180)
    rpl, took = close_and_time_final(sipserver, phone)
    assert rpl.status == 430 and took < BOUND, (rpl.text, took)
    assert no_more_replies(sipserver, inv0.hdr("Call-ID"), 3.0)

    def current():
        return k.rpc_json("tm.stats")["current"]
    assert env.wait_for(lambda: current() == 0, 5), k.rpc_json("tm.stats")
