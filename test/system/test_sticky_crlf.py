"""RFC 5626 keep-alive on a phone's own connection: the reference
etc/kamailio.cfg answers a double CRLF ("ping") with a single CRLF
("pong", section 3.5.1), over TLS and TCP, after the phone registered, and
the flow keeps working (the next INVITE still reaches the phone over it).
A lone CRLF (a pong, or a keep-alive that asks for no answer) gets nothing
back."""

import select
import time

import pytest

import harness
from tls_ua import uri_of, response
from test_sticky import (certs, sipserver, phones, register, call_phone,  # noqa: F401 (fixtures)
                         final, start_reference)


def raw_read(phone, timeout):
    """bytes the proxy sends on the phone's connection within timeout"""
    data = b""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return data
        if not (phone.tls and phone.sock.pending()):
            r, _, _ = select.select([phone.sock], [], [], left)
            if not r:
                return data
        chunk = phone.sock.recv(65536)
        if not chunk:
            return data
        data += chunk


def first_bytes(phone, timeout=2.0):
    """the first bytes the proxy sends, then whatever follows within 0.3 s"""
    if not (phone.tls and phone.sock.pending()):
        r, _, _ = select.select([phone.sock], [], [], timeout)
        if not r:
            return b""
    return phone.sock.recv(65536) + raw_read(phone, 0.3)


@pytest.mark.parametrize("tls", [True, False], ids=["tls", "tcp"])
def test_double_crlf_ping_gets_single_crlf_pong(tls, kamailio_factory, tmp_path,
                                                certs, sipserver, phones):
    k = start_reference(kamailio_factory, tmp_path, certs, sipserver)
    # the core setting the reference config relies on (tcp_crlf_ping=yes)
    assert k.rpc_json("cfg.get", "tcp", "crlf_ping") == 1
    phone = phones(harness.next_address(), k.address, 5061 if tls else 5060,
                   tls=tls)
    reg, _ = register(phone, k, sipserver)

    for _ in range(3):
        t0 = time.monotonic()
        phone.send("\r\n\r\n")
        assert first_bytes(phone) == b"\r\n"
        assert time.monotonic() - t0 < 1.0
    # a lone CRLF (what a pong looks like) is not answered
    phone.send("\r\n")
    assert raw_read(phone, 0.5) == b""

    # the flow still carries the phone's calls
    call_phone(sipserver, k, uri_of(reg.contacts()[0]))
    inv = phone.recv(5, want=lambda m: m.method == "INVITE" and not m.is_reply)
    phone.send(response(inv, 486, "Busy Here", to_tag="ka1"))
    assert final(sipserver).status == 486
    assert "CRLF ping" not in k.log_text()
