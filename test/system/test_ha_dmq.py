"""The pool acts as one (issue 11): three kamailio proxies of one pool share
switchover decisions over Kamailio's dmq module (genesys_ha "dmq" 1, the
reference cfg's WITH_DMQ)."""

import re
import time

import pytest

import ha_util as hu
from dmq_util import Pool, peers, wait_active


@pytest.fixture
def peer_factory():
    made = []

    def make(**kw):
        p = hu.Peer(**kw)
        p.start()
        made.append(p)
        return p

    yield make
    for p in made:
        p.stop()


def both_up(p):
    return (p["SIPS_A"]["members"]["primary"]["state"] == "active"
            and p["SIPS_A"]["members"]["backup"]["state"] == "active")


def invite_goes_to(k, pri, bak):
    """one INVITE through k: which member got it"""
    n1, n2 = len(pri.requests("INVITE")), len(bak.requests("INVITE"))
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
    assert status and status.startswith("SIP/2.0 200"), status
    if len(pri.requests("INVITE")) > n1:
        return "primary"
    assert len(bak.requests("INVITE")) > n2
    return "backup"


def test_operator_switchover_in_force_on_every_proxy(
        tmp_path, kamailio_factory, peer_factory):
    """genesys_ha.switchover on one proxy: the two others show the backup
    active within 50 ms and route a new INVITE to it; switching back on
    another proxy brings all three back to the primary (epoch 2)."""
    pri, bak = peer_factory(), peer_factory()
    pool = Pool(kamailio_factory, tmp_path,
                [("SIPS_A", pri.uri, bak.uri, None)])
    pool.start_all()
    ks = pool.ks
    for k in ks:
        hu.wait_pool(k, both_up, what="both members up")
        assert invite_goes_to(k, pri, bak) == "primary"
    t0 = time.monotonic()
    out = ks[0].rpc("genesys_ha.switchover", "SIPS_A")
    t_rpc = time.monotonic() - t0
    assert "backup" in out, out
    took = wait_active(ks[1:], "SIPS_A", "backup")
    print("switchover seen on the 2 other proxies %.1f ms after the RPC "
          "returned (RPC itself %.1f ms)" % (took * 1000, t_rpc * 1000))
    assert took < 0.05, took
    for k in ks:
        assert invite_goes_to(k, pri, bak) == "backup"
        p = hu.pool(k)["SIPS_A"]
        if k is not ks[0]:
            assert p["last_switchover"]["trigger"] == "peer", p
    head, _ = peers(ks[1])
    assert "SIPS_A=1/backup" in head["epochs"], head
    # back, decided by another proxy
    ks[2].rpc("genesys_ha.switchover", "SIPS_A")
    wait_active(ks, "SIPS_A", "primary")
    for k in ks:
        assert invite_goes_to(k, pri, bak) == "primary"
        assert "SIPS_A=2/primary" in peers(k)[0]["epochs"]
    # nothing was re-published in a loop: one applied switchover per
    # decision on each of the other proxies
    for k in ks:
        assert hu.pool(k)["SIPS_A"]["switchovers"] == "2", hu.pool(k)
