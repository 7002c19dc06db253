"""The reference config's HTTP management interface (WITH_HTTP_MGMT,
issue 13): JSON-RPC over HTTP, Prometheus metrics with genesys_ha gauges,
on its own listener, with a source allow-list and basic authentication.
Real HTTP with curl from loopback addresses of its own."""

import json
import re
import socket
import subprocess
import time

import harness
import ha_util as hu
from ha_util import wait_pool

CURL = "/usr/bin/curl"


def curl(url, source, data=None, user=None):
    """(HTTP status, body) of one request from `source`."""
    argv = [CURL, "-s", "-m", "5", "--interface", source,
            "-o", "-", "-w", "\n%{http_code}", url]
    if data is not None:
        argv += ["-H", "Content-Type: application/json", "--data", data]
    if user:
        argv += ["-u", user]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=10)
    body, _, code = r.stdout.rpartition("\n")
    return int(code or 0), body


def rpc(url, source, method, *params, user=None, status=200):
    code, body = curl(url + "/RPC", source, json.dumps(
        {"jsonrpc": "2.0", "method": method, "params": list(params), "id": 1}),
        user=user)
    assert code == status, (code, body)
    return json.loads(body)


SAMPLE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)(?:\s+(-?\d+))?$')


def parse_metrics(text):
    """Prometheus text format -> {(name, frozenset(labels)): value}; fails on
    a line that is not a comment, blank or a sample."""
    out = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = SAMPLE.match(line)
        assert m, "not a Prometheus sample: %r" % line
        labels = frozenset(re.findall(r'(\w+)\s*=\s*"([^"]*)"', m.group(2) or ""))
        out[(m.group(1), labels)] = float(m.group(3))
    return out


def gauge(metrics, name, **labels):
    return metrics.get(("kamailio_" + name, frozenset(labels.items())))


def wait_metrics(metrics, ok, timeout):
    """scrape metrics() every 0.2 s until ok(scrape); returns that scrape"""
    deadline = time.monotonic() + timeout
    while True:
        m = metrics()
        if ok(m):
            return m
        assert time.monotonic() < deadline, m
        time.sleep(0.2)


def test_http_management(tmp_path, kamailio_factory, peer_factory):
    pri, bak = peer_factory(), peer_factory()
    client, stranger = harness.next_address(), harness.next_address()
    pool = hu.write_pool(tmp_path / "pool.xml",
                         [("SIPS_A", pri.uri, bak.uri, None)])
    addr = harness.next_address()
    user = "ops:s3cret-pass"
    k = hu.start_proxy(kamailio_factory, pool, address=addr, defines={
        "WITH_HTTP_MGMT": None,
        "MGMT_LISTEN": "tcp:%s:8080" % addr,
        "MGMT_ALLOW": '"%s/32,10.0.0.0/8"' % client,
        "MGMT_AUTH": '"%s"' % user})
    wait_pool(k, lambda p: p["SIPS_A"]["members"]["backup"]["state"] == "active"
              and p["SIPS_A"]["members"]["primary"]["state"] == "active",
              what="both members answer")
    url = "http://%s:8080" % addr

    # JSON-RPC: genesys_ha.pool
    r = rpc(url, client, "genesys_ha.pool", user=user)
    pair = r["result"]["pairs"][0]
    assert pair["name"] == "SIPS_A" and pair["active"] == "primary", r

    # metrics: the gauges, refreshed every second
    def metrics():
        code, body = curl(url + "/metrics", client, user=user)
        assert code == 200, (code, body)
        return parse_metrics(body)

    # the refresh route sets the pool gauges, then the probe ones: a
    # scrape may fall in between
    m = wait_metrics(metrics, lambda m: (
        gauge(m, "genesys_member_up", pair="SIPS_A", role="backup") == 1
        and all(gauge(m, "genesys_target_rtt_ms", uri=x.uri) is not None
                for x in (pri, bak))), 5)
    assert gauge(m, "genesys_pair_up", pair="SIPS_A") == 1
    assert gauge(m, "genesys_pair_active_backup", pair="SIPS_A") == 0
    assert gauge(m, "genesys_member_up", pair="SIPS_A", role="primary") == 1
    assert gauge(m, "genesys_pair_switchovers", pair="SIPS_A") == 0
    assert gauge(m, "genesys_sticky_bindings") == 0
    # the last probe round-trip time of each member (loopback: a few ms)
    for member in (pri, bak):
        rtt = gauge(m, "genesys_target_rtt_ms", uri=member.uri)
        assert rtt is not None and 0 <= rtt < 1000, (member.uri, sorted(m)[:40])
    # Kamailio's own statistics come along (counters of our modules too)
    assert ("kamailio_genesys_ha_switchovers", frozenset()) in m, sorted(m)[:20]

    # JSON-RPC: an operator switchover; the gauges follow
    r = rpc(url, client, "genesys_ha.switchover", "SIPS_A", user=user)
    assert "error" not in r, r
    wait_pool(k, lambda p: p["SIPS_A"]["active"] == "backup", what="backup active")
    m = wait_metrics(metrics, lambda m: gauge(
        m, "genesys_pair_active_backup", pair="SIPS_A") == 1, 5)
    assert gauge(m, "genesys_pair_switchovers", pair="SIPS_A") == 1
    assert gauge(m, "genesys_pair_up", pair="SIPS_A") == 1
    # both members stop answering: their gauges and the pair's follow
    assert gauge(m, "genesys_pair_state", pair="SIPS_A") == 0
    bak.options_code = None
    pri.options_code = None
    m = wait_metrics(metrics, lambda m: gauge(
        m, "genesys_pair_state", pair="SIPS_A") == 2, 8)
    assert gauge(m, "genesys_member_up", pair="SIPS_A", role="backup") == 0
    assert gauge(m, "genesys_member_up", pair="SIPS_A", role="primary") == 0
    assert gauge(m, "genesys_pair_up", pair="SIPS_A") == 0
    # an RPC error comes back as a JSON-RPC error (and the HTTP status)
    r = rpc(url, client, "genesys_ha.switchover", "NO_SUCH_PAIR", user=user,
            status=404)
    assert r["error"]["code"] == 404, r

    # the same fault through kamcmd: printed, exit status 0 (documented)
    kr = k.rpc_raw("genesys_ha.switchover", "NO_SUCH_PAIR")
    assert kr.returncode == 0 and kr.stdout.startswith("error: 404"), kr

    # access control: other sources, no or wrong credentials, other listeners
    code, _ = curl(url + "/metrics", stranger, user=user)
    assert code == 403
    code, _ = curl(url + "/metrics", client)
    assert code == 401
    code, _ = curl(url + "/metrics", client, user="ops:wrong")
    assert code == 401
    code, _ = curl("http://%s:5060/metrics" % addr, client, user=user)
    assert code == 403
    code, _ = curl(url + "/other", client, user=user)
    assert code == 404
    assert "refused (not in MGMT_ALLOW)" in k.log_text()
    # SIP over the management listener is not served
    s = socket.create_connection((addr, 8080), timeout=2,
                                 source_address=(client, 0))
    s.sendall(("OPTIONS sip:%s:8080 SIP/2.0\r\nVia: SIP/2.0/TCP %s:1;branch=z9hG4bKm\r\n"
               "From: <sip:a@%s>;tag=1\r\nTo: <sip:%s>\r\nCall-ID: m1\r\n"
               "CSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
               % (addr, client, client, addr)).encode())
    s.settimeout(1.0)
    try:
        got = s.recv(4096)
    except socket.timeout:
        got = b""
    s.close()
    assert not got.startswith(b"SIP/2.0 200"), got
