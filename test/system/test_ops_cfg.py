"""Reference-config parts an operator turns on with a define (issue 13):
overload-ctrl-dialog-rate, OPTIONS to the proxy telling whether it can
serve, sip-ip-tos, resolve-host.  Real SIP through the reference
etc/kamailio.cfg; SIP Servers are UDP peers, callers SIPp or sockets."""

import re
import socket
import time

import pytest

import harness
import ha_util as hu
from ha_util import wait_pool
from sip_peer import SipPeer


def one_pair(tmp_path, pri, bak_addr=None):
    return hu.write_pool(tmp_path / "pool.xml",
                         [("SIPS_A", pri.uri,
                           "sip:%s:5060" % (bak_addr or harness.next_address()),
                           None)])


def callids(texts):
    out = set()
    for t in texts:
        m = re.search(r"^(?:Call-ID|i):\s*(\S+)", t, re.M | re.I)
        if m:
            out.add(m.group(1))
    return out


# ---- overload-ctrl-dialog-rate ---------------------------------------------

def test_dialog_rate_twice_the_threshold(tmp_path, kamailio_factory,
                                         sipp_factory, peer_factory):
    """INVITEs at twice overload-ctrl-dialog-rate: about half get 503 with
    Retry-After from the proxy, and none of those reach the SIP Server."""
    rate, seconds = 20, 10
    sips = peer_factory(invite_code=486)
    k = hu.start_proxy(kamailio_factory, one_pair(tmp_path, sips),
                       defines={"DIALOG_RATE": str(rate)})
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "up", what="pair up")
    n = 2 * rate * seconds
    uac = sipp_factory("ovl_invite.xml", "uac", remote="%s:%d" % (k.address, k.port),
                       calls=n, service="2000", timeout=60,
                       extra_args=["-r", str(2 * rate), "-rp", "1000"])
    res = uac.run()
    assert res.rc == 0, res.screen
    got_503 = res.received("SIP/2.0 503")
    got_486 = res.received("SIP/2.0 486")
    refused = callids(m["text"] for m in got_503)
    answered = callids(m["text"] for m in got_486)
    assert len(refused) + len(answered) == n, (len(refused), len(answered))
    share = len(refused) / n
    expected = 1 - rate / (2.0 * rate)
    print("dialog-rate: %d of %d refused, share %.3f (expected %.3f)"
          % (len(refused), n, share, expected))
    assert abs(share - expected) <= 0.1 * expected, (share, expected)
    for m in got_503:
        assert re.search(r"^Retry-After: 5\r?$", m["text"], re.M), m["text"]
    # none of the refused INVITEs reached the SIP Server; all others did
    at_server = callids(sips.requests("INVITE"))
    assert not refused & at_server
    assert answered == at_server
    assert "overload-ctrl-dialog-rate 20/s: INVITE from" in k.log_text()


def burst(k, n):
    """n INVITEs as fast as sockets go: the number of 503s."""
    refused = 0
    for _ in range(n):
        status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
        assert status is not None
        refused += status.startswith("SIP/2.0 503")
    return refused


def test_dialog_rate_off_by_default_and_changed_at_run_time(
        tmp_path, kamailio_factory, peer_factory):
    """0 (the default) is off; the rate changes at run time with cfg_rpc and
    takes effect at once, and back to 0 switches the check off."""
    sips = peer_factory(invite_code=486)
    k = hu.start_proxy(kamailio_factory, one_pair(tmp_path, sips))
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "up", what="pair up")
    assert k.rpc_json("cfg.get", "sipproxy", "overload_ctrl_dialog_rate") == 0
    assert burst(k, 30) == 0
    k.rpc("cfg.set_now_int", "sipproxy", "overload_ctrl_dialog_rate", 5)
    # 30 INVITEs within a few one-second windows: at most 5 per window pass
    t0 = time.monotonic()
    refused = burst(k, 30)
    windows = int(time.monotonic() - t0) + 2
    assert refused >= 30 - 5 * windows, (refused, windows)
    k.rpc("cfg.set_now_int", "sipproxy", "overload_ctrl_dialog_rate", 0)
    assert burst(k, 30) == 0
    assert len(sips.requests("INVITE")) == 90 - refused


# ---- OPTIONS to the proxy: can it serve? -----------------------------------

def test_options_to_proxy_reflects_serving_pair(tmp_path, kamailio_factory,
                                                peer_factory):
    """OPTIONS addressed to the proxy itself: 200 while the serving pair
    takes new dialogs, 503 + Retry-After while it cannot (seed 000: SBCs
    and gateways identify which SIP Proxy is active), 200 again after."""
    pri = peer_factory()
    # no down grace here (see the next test)
    k = hu.start_proxy(kamailio_factory, one_pair(tmp_path, pri),
                       defines={"DOWN_GRACE": "0"})
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "up", what="pair up")
    status, _ = hu.udp_request(k, "OPTIONS", "sip:%s:%d" % (k.address, k.port))
    assert status.startswith("SIP/2.0 200"), status
    # the primary stops answering, the backup never did: out of service
    pri.options_code = None
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "out-of-service",
              what="pair out of service")
    status, text = hu.udp_request(k, "OPTIONS", "sip:%s:%d" % (k.address, k.port))
    assert status.startswith("SIP/2.0 503"), status
    assert re.search(r"^Retry-After: 5\r?$", text, re.M), text
    # inactive (503 to OPTIONS) is "cannot take new dialogs" too
    pri.options_code = 503
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "inactive",
              what="pair inactive")
    status, _ = hu.udp_request(k, "OPTIONS", "sip:%s:%d" % (k.address, k.port))
    assert status.startswith("SIP/2.0 503"), status
    pri.options_code = 200
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "up", what="pair up again")
    status, _ = hu.udp_request(k, "OPTIONS", "sip:%s:%d" % (k.address, k.port))
    assert status.startswith("SIP/2.0 200"), status
    # nothing of this was relayed to the SIP Server
    assert not [t for t in pri.requests("OPTIONS") if "sip:%s" % k.address in
                t.split("\r\n", 1)[0]]


def test_options_to_proxy_200_during_the_down_grace(tmp_path, kamailio_factory,
                                                    peer_factory):
    """In a pair's down grace new dialogs are still tried (the backup may be
    being promoted): OPTIONS to the proxy gets 200 until the grace ends,
    then 503."""
    pri = peer_factory()
    k = hu.start_proxy(kamailio_factory, one_pair(tmp_path, pri),
                       defines={"DOWN_GRACE": "3000"})
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "up", what="pair up")
    pri.options_code = None
    wait_pool(k, lambda p: p["SIPS_A"]["state"] not in ("up", "probing"),
              what="pair down")
    t0 = time.monotonic()
    status, _ = hu.udp_request(k, "OPTIONS", "sip:%s:%d" % (k.address, k.port))
    assert status.startswith("SIP/2.0 200"), status
    while True:
        status, _ = hu.udp_request(k, "OPTIONS", "sip:%s:%d" % (k.address, k.port))
        if status.startswith("SIP/2.0 503"):
            break
        assert time.monotonic() - t0 < 4.0, status
        time.sleep(0.2)


# ---- sip-ip-tos, resolve-host ----------------------------------------------

class TosReceiver(SipPeer):
    """A UDP SIP peer (sip_peer.SipPeer) that records each request with the
    TOS byte of its IP header (IP_RECVTOS) and answers nothing."""

    def __init__(self):
        super().__init__("udp", rules={"*": None}, recv_tos=True)
        self._taken = 0
        self.start()

    def recv(self):
        """(text, TOS byte) of the next request (within 3 s)"""
        msg = self.wait_for(lambda m: not m.is_reply, self._taken + 1, 3,
                            what="a relayed request")[self._taken]
        self._taken += 1
        return msg.text, msg.tos

    def close(self):
        self.stop()


def relayed_message(k, rx, method="MESSAGE"):
    """Send `method` through the lab-mode proxy to the receiver: (text, tos)."""
    hu_sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    addr = harness.next_address()
    hu_sock.bind((addr, 0))
    port = hu_sock.getsockname()[1]
    msg = ("%s sip:rx@%s:5060 SIP/2.0\r\n"
           "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%d;rport\r\n"
           "From: <sip:1001@%s>;tag=t1\r\n"
           "To: <sip:rx@%s>\r\n"
           "Call-ID: tos-%f\r\n"
           "CSeq: 1 %s\r\n"
           "Contact: <sip:1001@%s:%d>\r\n"
           "Max-Forwards: 70\r\n"
           "Content-Length: 0\r\n\r\n"
           % (method, rx.address, addr, port, int(time.time() * 1e6), addr,
              rx.address, time.time(), method, addr, port))
    hu_sock.sendto(msg.encode(), (k.address, k.port))
    try:
        return rx.recv()
    finally:
        hu_sock.close()


@pytest.mark.parametrize("tos", [None, 184])
def test_sip_ip_tos(kamailio_factory, tos):
    """sip-ip-tos: by default no TOS marking (0, as the operating system
    sends; Kamailio's own default would be 0x10); SIP_IP_TOS sets it."""
    rx = TosReceiver()
    try:
        k = kamailio_factory(defines={} if tos is None else {"SIP_IP_TOS": str(tos)})
        text, got = relayed_message(k, rx)
        assert text.startswith("MESSAGE "), text
        assert got == (tos or 0), (got, tos)
    finally:
        rx.close()


def test_resolve_host_false_puts_the_host_name_in_via(kamailio_factory):
    """resolve-host = false (VIA_HOST): the Via the proxy adds carries the
    host name (seed 000); without it (resolve-host = true) the address."""
    rx = TosReceiver()
    name = "proxy-%d.example.test" % (time.time_ns() % 100000)
    try:
        k = kamailio_factory(defines={"VIA_HOST": name})
        text, _ = relayed_message(k, rx, "INVITE")
        assert re.search(r"^Via: SIP/2.0/UDP %s[;:]" % re.escape(name), text,
                         re.M), text
        # Record-Route keeps the address: in-dialog requests need no lookup
        assert re.search(r"^Record-Route: <sip:%s;lr>" % re.escape(k.address),
                         text, re.M), text
        # default (resolve-host = true): the address
        k2 = kamailio_factory(name="k2")
        text, _ = relayed_message(k2, rx)
        assert re.search(r"^Via: SIP/2.0/UDP %s[;:]" % re.escape(k2.address),
                         text, re.M), text
    finally:
        rx.close()


# ---- TLS --------------------------------------------------------------------

PACKAGE_TLS_CFG = "/etc/kamailio/genesys/tls.cfg"


def test_tls_cfg_defaults_to_the_package_file(tmp_path):
    """WITH_TLS without TLS_CFG reads the package's own tls.cfg (where
    debian/rules installs etc/tls.cfg), not Debian's /etc/kamailio/tls.cfg."""
    import os
    if os.path.exists(PACKAGE_TLS_CFG):
        pytest.skip("the package is installed: its tls.cfg exists")
    k = harness.Kamailio(tmp_path / "k", defines={
        "WITH_TLS": None, "LISTEN_TLS": "tls:%s:5061" % harness.next_address()})
    with pytest.raises(harness.HarnessError) as e:
        k.start()
    k.stop(check=False)
    assert "cannot stat config file %s" % PACKAGE_TLS_CFG in str(e.value), str(e.value)


# ---- the pool's name (DN-level oos-check of SIP Server) ----------------------

def test_options_to_the_pool_name_needs_alias(tmp_path, kamailio_factory,
                                              peer_factory):
    """SIP Server probes its sip-outbound-proxy DN with OPTIONS to the DN's
    contact (the pool's name): the proxy answers it itself only when that
    name is an alias (ALIAS); else the OPTIONS goes on to a SIP Server."""
    name = "sip-proxy-pool.example.test"
    pri = peer_factory()
    k = hu.start_proxy(kamailio_factory, one_pair(tmp_path, pri),
                       defines={"ALIAS": name})
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "up", what="pair up")
    status, _ = hu.udp_request(k, "OPTIONS", "sip:%s" % name, address=pri.address)
    assert status.startswith("SIP/2.0 200"), status
    status, _ = hu.udp_request(k, "OPTIONS", "sip:%s:5060" % name)
    assert status.startswith("SIP/2.0 200"), status
    assert not [t for t in pri.requests("OPTIONS") if name in t.split("\r\n", 1)[0]]
    # without the alias the name is not the proxy's: relayed to the pair
    k2 = hu.start_proxy(kamailio_factory, one_pair(tmp_path, pri), name="proxy2")
    wait_pool(k2, lambda p: p["SIPS_A"]["state"] == "up", what="pair up")
    hu.udp_request(k2, "OPTIONS", "sip:%s" % name)
    assert [t for t in pri.requests("OPTIONS") if name in t.split("\r\n", 1)[0]]


# ---- module load order ----------------------------------------------------------

def test_genesys_ha_may_be_loaded_before_genesys_oos(tmp_path, kamailio_factory,
                                                      peer_factory):
    """genesys_ha needs genesys_oos loaded, in either order: with the two
    loadmodule lines swapped the pool is probed and follows its members."""
    pri = peer_factory()
    cfg = hu.reference_cfg().replace(
        'loadmodule "genesys_oos"\nloadmodule "genesys_ha"',
        'loadmodule "genesys_ha"\nloadmodule "genesys_oos"')
    assert cfg.index('loadmodule "genesys_ha"') < cfg.index('loadmodule "genesys_oos"')
    k = hu.start_proxy(kamailio_factory, one_pair(tmp_path, pri), cfg_text=cfg)
    wait_pool(k, lambda p: p["SIPS_A"]["members"]["primary"]["state"] == "active",
              what="primary active")
    pri.options_code = None
    wait_pool(k, lambda p: p["SIPS_A"]["state"] == "out-of-service",
              what="pair out of service")
