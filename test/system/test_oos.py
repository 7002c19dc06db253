"""genesys_oos: active out-of-service detection by OPTIONS probing.

Every test runs the real kamailio with genesys_oos and real peers on their
own loopback addresses (SIPp UAS, or the scriptable socket responder of
test_oos_util when a test must choose which probe is answered), and reads the
target states through `kamcmd genesys_oos.list`.
"""

import http.client
import json
import re
import socket
import struct
import threading
import time

import pytest

import harness
from ha_util import send_raw
from sip_peer import wait_until
from test_oos_util import (PROBE_LOG, Responder, make_cfg, oos_list,
                           parse_rpc_structs, rpc_probe, send_message, target,
                           wait_state)

FAST = {"oos_check": 1, "oos_force": 1, "oos_timeout": 500}
MANY = 100000   # SIPp -m: every probe is a new "call" for a UAS


@pytest.fixture
def responders(peer_factory):
    return lambda **kw: peer_factory(Responder, **kw)


def reply_scenario(tmp_path, code):
    """oos_uas_reply.xml answering with `code` (SIPp checks codes at load)."""
    text = (harness.SIPP_DIR / "oos_uas_reply.xml").read_text()
    path = tmp_path / ("oos_uas_reply_%d.xml" % code)
    path.write_text(text.replace("SIP/2.0 200 Probe Reply",
                                 "SIP/2.0 %d Probe Reply" % code))
    return path


def wait_row(k, uri, pred, timeout, what, socket_name=None):
    """Poll genesys_oos.list until pred(the target's row); returns the row."""
    rows = []

    def check():
        rows.append(target(k, uri, socket_name))
        return pred(rows[-1])
    wait_until(check, timeout, lambda: "%s: %s (last %s)" % (uri, what,
                                                           rows[-1:]))
    return rows[-1]


def settled(n):
    """a row with at least n probes sent and none pending"""
    return lambda row: (row["probes_sent"] >= n
                        and row["probe_pending"] == 0)


def start_kamailio(kamailio_factory, params, **kw):
    return kamailio_factory(cfg_text=make_cfg(params), **kw)


def events(k):
    return re.findall(r"OOS-EVENT (\S+) uri=(\S+) old=(\S+) state=(\S+) "
                      r"reason=(\S+) code=(\S+)", k.log_text())


# ---------------------------------------------------------------- defaults

def test_reference_config_has_no_targets(kamailio):
    """The reference cfg loads genesys_oos without targets: valid, no
    probing, no errors."""
    assert oos_list(kamailio) == []
    time.sleep(1.5)     # what is tested: nothing is probed in that time
    stats = kamailio.statistics("genesys_oos:")
    assert stats["probes_sent"] == 0, stats
    assert not re.search(r"(ERROR|WARNING): .*genesys_oos", kamailio.log_text())


# ---------------------------------------------------------------- reply codes

@pytest.mark.parametrize("code,state", [(200, "active"), (503, "inactive"),
                                        (404, "active"), (408, "active")])
def test_reply_code_gives_state(kamailio_factory, sipp_factory, tmp_path,
                                code, state):
    """A SIPp UAS answering OPTIONS with `code`: any final reply but 503 is
    ACTIVE (a 408 received from the target is an answer), 503 is INACTIVE;
    the event route of the new state runs with the target in $goos()."""
    uas = sipp_factory(reply_scenario(tmp_path, code), "uas%d" % code,
                       calls=MANY).start()
    k = start_kamailio(kamailio_factory, dict(FAST, target=uas.uri))
    _, row = wait_state(k, uas.uri, state, timeout=5)
    assert row["last_code"] == code, row
    assert row["last_reason"] == "reply" and row["forced"] == "no", row
    assert row["last_rtt_ms"] >= 0 and row["timeouts"] == 0, row
    # it stays there: later probes confirm the state
    row = wait_row(k, uas.uri, settled(3), 5, "three probes done")
    assert row["state"] == state and int(row["probes_sent"]) >= 3, row
    ev = "up" if state == "active" else state
    assert (ev, uas.uri, "unknown", state, "reply", str(code)) in events(k)
    assert len(events(k)) == 1, events(k)
    # the state change is logged with target, old and new state and why
    level = "NOTICE" if state == "active" else "WARNING"
    assert re.search(r"%s: .*genesys_oos .*target %s state unknown -> %s "
                     r"\(reply %d in \d+ ms\)" % (level, re.escape(uas.uri),
                                                  state, code),
                     k.log_text()), k.log_text()[-3000:]


# ---------------------------------------------------------------- transport

@pytest.mark.parametrize("transport", ["udp", "tcp", "tls"])
def test_closed_port_is_down_in_one_round_trip(kamailio_factory, transport):
    """Nothing listens on the target's port: ICMP port unreachable (UDP) or
    a refused connection (TCP, and TLS whose check is the same TCP connect)
    is DOWN at once, long before oos_timeout."""
    addr = harness.next_address()
    uri = {"udp": "sip:%s:5060" % addr,
           "tcp": "sip:%s:5060;transport=tcp" % addr,
           "tls": "sips:%s:5061" % addr}[transport]
    k = start_kamailio(kamailio_factory, {"oos_check": 5, "oos_force": 5,
                                          "oos_timeout": 3000, "target": uri})
    _, row = wait_state(k, uri, "down", timeout=2.5)
    assert row["last_reason"] == "transport", row
    assert row["timeouts"] == 0 and row["transport_errors"] >= 1, row
    # a probe now: answered by the network in well under oos_timeout (3 s)
    res, took = rpc_probe(k, uri)
    assert (res["result"], res["reason"]) == ("down", "transport"), res
    assert took < 1.0, "probe of a closed %s port took %.2fs" % (transport, took)
    assert target(k, uri)["timeouts"] == 0
    assert ("down", uri, "unknown", "down", "transport", "0") in events(k)
    assert re.search(r"WARNING: genesys_oos .*target %s state unknown -> down "
                     r"\(transport error: (ICMP port unreachable|connection "
                     r"refused)\)" % re.escape(uri), k.log_text())
    # a refused TCP target costs no tm send: no core ERROR lines per probe
    assert not re.search(r"ERROR:", k.log_text()), k.log_text()[-2000:]


def test_transport_check_off_falls_back_to_timeout(kamailio_factory):
    """transport_check=0: a closed UDP port is only detected by the probe
    deadline (what dispatcher does), which shows what the check buys."""
    uri = "sip:%s:5060" % harness.next_address()
    k = start_kamailio(kamailio_factory, {"oos_check": 1, "oos_force": 1,
                                          "oos_timeout": 600, "target": uri,
                                          "transport_check": 0})
    _, row = wait_state(k, uri, "down", timeout=4)
    assert row["last_reason"] == "timeout" and row["transport_errors"] == 0, row
    assert row["transport_check"] == "off", row
    res, took = rpc_probe(k, uri)
    assert res["reason"] == "timeout", res
    assert took >= 0.55, took


# ---------------------------------------------------------------- timeouts

def test_silent_target_goes_down_then_recovers(kamailio_factory, sipp_factory,
                                               tmp_path):
    """A SIPp UAS that reads OPTIONS and never answers is DOWN within
    oos_timeout + one period; answering again, it is ACTIVE within
    oos_force + oos_timeout."""
    params = {"oos_check": 1, "oos_force": 2, "oos_timeout": 700}
    addr = harness.next_address()
    uri = "sip:%s:5060" % addr
    up = sipp_factory(reply_scenario(tmp_path, 200), "up1", address=addr,
                      calls=MANY).start()
    k = start_kamailio(kamailio_factory, dict(params, target=uri))
    wait_state(k, uri, "active", timeout=5)

    up.kill()
    silent = sipp_factory("oos_uas_silent.xml", "silent", address=addr,
                          calls=MANY).start()
    took, row = wait_state(k, uri, "down", timeout=6)
    # one period (1 s) + oos_timeout (0.7 s) + scheduling margin
    assert took < 1.0 + 0.7 + 0.8, took
    assert row["last_reason"] == "timeout" and row["timeouts"] >= 1, row
    assert row["transport_errors"] == 0, row
    # the SIPp UAS really received the probes it did not answer
    wait_until(lambda: silent.result(None).received("OPTIONS "), 3,
               "a probe in the silent UAS's trace")
    silent.kill()
    assert silent.result(None).received("OPTIONS "), "no probe reached the UAS"

    up2 = sipp_factory(reply_scenario(tmp_path, 200), "up2", address=addr,
                       calls=MANY).start()
    took, row = wait_state(k, uri, "active", timeout=6)
    # oos_force (2 s) + oos_timeout (0.7 s) + margin
    assert took < 2.0 + 0.7 + 0.8, took
    assert row["last_code"] == 200, row
    up2.kill()
    ev = [e[:5] for e in events(k)]
    assert ev == [("up", uri, "unknown", "active", "reply"),
                  ("down", uri, "active", "down", "timeout"),
                  ("up", uri, "down", "active", "reply")], ev


@pytest.mark.parametrize("fail_threshold,flips", [(2, False), (1, True)])
def test_fail_threshold(kamailio_factory, responders, fail_threshold, flips):
    """With fail_threshold=2 a single lost probe does not flip an ACTIVE
    target; with 1 it does (the control case)."""
    r = responders(policy=lambda n, src: (None, 0) if n == 2 else (200, 0))
    k = start_kamailio(kamailio_factory, dict(FAST, target=r.uri,
                                              fail_threshold=fail_threshold))
    wait_state(k, r.uri, "active", timeout=5)
    seen = set()
    deadline = time.monotonic() + 6
    while time.monotonic() < deadline:
        row = target(k, r.uri)
        seen.add(row["state"])
        if row["probes_sent"] >= 6 and row["probe_pending"] == 0:
            break
        time.sleep(0.02)
    assert row["timeouts"] == 1, row          # exactly one probe was lost
    assert ("down" in seen) == flips, (seen, row)
    assert row["state"] == "active", row        # and answers bring it back


def test_late_reply_does_not_undo_the_timeout(kamailio_factory, responders):
    """Replies slower than oos_timeout: each probe times out (DOWN), the late
    reply is recorded (code, rtt, late_replies) and triggers an immediate
    re-probe, but never brings the target up by itself."""
    r = responders(policy=lambda n, src: (200, 0.45))
    k = start_kamailio(kamailio_factory, {"oos_check": 1, "oos_force": 2,
                                          "oos_timeout": 250, "target": r.uri})
    wait_state(k, r.uri, "down", timeout=5)
    states = set()
    t_end = time.monotonic() + 3.0
    while time.monotonic() < t_end:     # what is tested: never up in 3 s
        states.add(target(k, r.uri)["state"])
        time.sleep(0.02)
    row = target(k, r.uri)
    assert states == {"down"}, states
    assert row["late_replies"] >= 2, row
    assert row["last_code"] == 200 and row["last_rtt_ms"] >= 400, row
    # re-probed at once after each late reply, not every oos_force (2 s):
    # ~0.7 s per cycle over the 3+ s observed
    assert len(r.probes) >= 4, len(r.probes)


# ---------------------------------------------------------------- matching

def test_same_uri_on_two_sockets_stays_distinct(kamailio_factory, responders):
    """Two targets with the same URI, probed from two different send
    sockets: the peer answers only one of them, and the replies go to the
    probe that caused them (kamailio issue 4330)."""
    kaddr = harness.next_address()
    kaddr2 = harness.next_address()
    r = responders(policy=lambda n, src: (200, 0) if src[0] == kaddr else (None, 0))
    cfg = make_cfg([("oos_check", 1), ("oos_force", 1), ("oos_timeout", 400),
                    ("target", "%s socket=udp:%s:5060" % (r.uri, kaddr)),
                    ("target", "%s socket=udp:%s:5060" % (r.uri, kaddr2))],
                   listen=["udp:%s:5060" % kaddr2])
    k = kamailio_factory(cfg_text=cfg, address=kaddr)
    wait_state(k, r.uri, "active", timeout=5, socket_name="udp:%s:5060" % kaddr)
    wait_state(k, r.uri, "down", timeout=5, socket_name="udp:%s:5060" % kaddr2)
    # one more probe each: the answered one done, the other timed out
    sa, sb = "udp:%s:5060" % kaddr, "udp:%s:5060" % kaddr2
    na = int(target(k, r.uri, sa)["probes_sent"])
    nb = int(target(k, r.uri, sb)["timeouts"])
    wait_row(k, r.uri, settled(na + 1), 3, "one more probe", sa)
    wait_row(k, r.uri, lambda row: int(row["timeouts"]) > nb, 3,
             "one more timeout", sb)
    a = target(k, r.uri, "udp:%s:5060" % kaddr)
    b = target(k, r.uri, "udp:%s:5060" % kaddr2)
    assert a["state"] == "active" and a["timeouts"] == 0, a
    assert b["state"] == "down" and b["last_code"] == 0, b
    assert {src[0] for _, _, src in r.probes} == {kaddr, kaddr2}


# ---------------------------------------------------------------- passive

def test_passive_failure_report_probes_at_once(kamailio_factory, responders):
    """oos_report_failure(uri) from the script probes the target at once:
    it is DOWN long before the next periodic probe (oos_check=60), and a
    report alone never marks it down; oos_report_alive(uri) lets a DOWN
    target be probed at once (oos_force=30)."""
    r = responders()
    addr = r.address
    k = start_kamailio(kamailio_factory, {"oos_check": 60, "oos_force": 30,
                                          "oos_timeout": 1000, "target": r.uri})
    wait_state(k, r.uri, "active", timeout=3)
    probes = target(k, r.uri)["probes_sent"]

    # a report while it answers: probed at once, still active
    line = send_message(k, {"X-Report": "failure", "X-Target": r.uri})
    assert line == "SIP/2.0 200 rc=1", line
    row = wait_row(k, r.uri, settled(probes + 1), 2,
                   "a probe after the report, answered")
    assert row["state"] == "active"

    # the server dies (port closed): the next report finds it down at once
    r.stop()
    send_message(k, {"X-Report": "failure", "X-Target": r.uri})
    took, row = wait_state(k, r.uri, "down", timeout=3)
    assert took < 2.0, took
    assert row["last_reason"] == "transport", row

    # it is back: a report of traffic from it probes it at once
    r2 = responders(address=addr)
    line = send_message(k, {"X-Report": "alive", "X-Target": r.uri})
    assert line == "SIP/2.0 200 rc=1", line
    took, _ = wait_state(k, r.uri, "active", timeout=3)
    assert took < 2.0, took
    assert r2.probes

    # unknown targets
    line = send_message(k, {"X-Report": "failure", "X-Target": "sip:nobody@x"})
    assert line == "SIP/2.0 200 rc=-4", line


def test_oos_is_active_return_codes(kamailio_factory, responders, sipp_factory,
                                    tmp_path):
    """oos_is_active(uri): 1 active, -1 inactive, -2 down, -4 not a target."""
    ok = responders()
    busy = sipp_factory(reply_scenario(tmp_path, 503), "busy", calls=MANY).start()
    dead = "sip:%s:5060" % harness.next_address()
    k = start_kamailio(kamailio_factory, [("oos_check", 1), ("oos_force", 1),
                                          ("oos_timeout", 500),
                                          ("target", ok.uri),
                                          ("target", busy.uri),
                                          ("target", dead)])
    wait_state(k, ok.uri, "active", timeout=5)
    wait_state(k, busy.uri, "inactive", timeout=5)
    wait_state(k, dead, "down", timeout=5)
    for uri, rc in ((ok.uri, "1"), (busy.uri, "-1"), (dead, "-2"),
                    ("sip:unknown.example.com", "-4")):
        line = send_message(k, {"X-Target": uri})
        assert line == "SIP/2.0 200 rc=%s" % rc, (uri, line)


# ---------------------------------------------------------------- operator

def test_forced_state_wins_until_auto(kamailio_factory, responders):
    """genesys_oos.set_state forces a state over probe results until auto."""
    r = responders()
    dead = "sip:%s:5060" % harness.next_address()
    k = start_kamailio(kamailio_factory, [("oos_check", 1), ("oos_force", 1),
                                          ("oos_timeout", 400),
                                          ("target", r.uri), ("target", dead)])
    wait_state(k, r.uri, "active", timeout=5)
    wait_state(k, dead, "down", timeout=5)

    out = k.rpc_json("genesys_oos.set_state", r.uri, "down")
    assert out["state"] == "down" and out["forced"] == "down", out
    k.rpc("genesys_oos.set_state", dead, "active")
    probes = int(target(k, r.uri)["probes_sent"])
    # probes keep running and keep answering
    wait_row(k, r.uri, settled(probes + 2), 4, "two more probes")
    a, d = target(k, r.uri), target(k, dead)
    assert a["probes_sent"] >= probes + 2, a
    assert (a["state"], a["forced"], a["probed_state"]) == ("down", "down", "active"), a
    assert (d["state"], d["forced"], d["probed_state"]) == ("active", "active", "down"), d
    assert a["last_reason"] == "forced", a

    k.rpc("genesys_oos.set_state", r.uri, "auto")
    k.rpc("genesys_oos.set_state", dead, "auto")
    a, d = target(k, r.uri), target(k, dead)
    assert (a["state"], a["forced"], a["last_reason"]) == ("active", "no", "auto"), a
    assert (d["state"], d["forced"]) == ("down", "no"), d
    ev = events(k)
    assert ("down", r.uri, "active", "down", "forced", "0") in ev, ev
    assert ("up", r.uri, "down", "active", "auto", "0") in ev, ev
    assert ("up", dead, "down", "active", "forced", "0") in ev, ev
    assert re.search(r"target %s state active -> down \(forced by the operator"
                     % re.escape(r.uri), k.log_text())


def test_rpc_probe_and_bad_arguments(kamailio_factory, responders):
    """genesys_oos.probe probes afresh (kamcmd: the result in the list and
    the log, rpc_probe); unknown targets and bad arguments get an RPC error 400."""
    r = responders(policy=lambda n, src: (200 if n % 2 == 0 else 486, 0))
    k = start_kamailio(kamailio_factory, {"oos_check": 30, "oos_force": 30,
                                          "oos_timeout": 1000, "target": r.uri})
    wait_state(k, r.uri, "active", timeout=3)
    n0 = len(r.probes)
    res, _ = rpc_probe(k, r.uri)
    assert len(r.probes) == n0 + 1
    assert (res["result"], res["reason"]) == ("active", "reply"), res
    code = 200 if n0 % 2 == 0 else 486
    assert res["code"] == str(code), (n0, res)

    # 404 unknown, 400 bad input, 409 conflict (a target of the
    # configuration cannot be removed over RPC)
    for args, code in ((("genesys_oos.probe", "sip:nobody@example.com"), 404),
                       (("genesys_oos.set_state", "sip:nobody@example.com",
                         "down"), 404),
                       (("genesys_oos.set_state", r.uri, "sideways"), 400),
                       (("genesys_oos.set_state", r.uri), 400),
                       (("genesys_oos.probe",), 400),
                       (("genesys_oos.remove", r.uri), 409)):
        res = k.rpc_raw(*args)
        assert res.stdout.startswith("error: %d " % code), \
            (args, res.stdout, res.stderr)
    # still alive and unchanged
    assert target(k, r.uri)["state"] == "active"


def _silent_after_first(kamailio_factory, responders, http=False):
    """a target that answers its first probe, then never again; ACTIVE"""
    r = responders(policy=lambda n, src: (200, 0) if n == 0 else (None, 0))
    k = kamailio_factory(cfg_text=make_cfg(
        {"oos_check": 30, "oos_force": 30, "oos_timeout": 3000,
         "target": r.uri}, http=http))
    wait_state(k, r.uri, "active", timeout=3)
    return k, r


def test_rpc_probe_of_silent_target_does_not_block_ctl(kamailio_factory,
                                                       responders):
    """kamcmd genesys_oos.probe of a silent target answers at once with the
    probe's number (ctl has no delayed replies; the command used to hold the
    ctl process for up to 2 * oos_timeout + 1 s), the next command on the
    same ctl socket is served at once while the probe is pending, and the
    result still arrives: genesys_oos.list and the log show it when the
    probe times out."""
    k, r = _silent_after_first(kamailio_factory, responders)
    assert len(r.probes) == 1
    before = target(k, r.uri)
    t0 = time.monotonic()
    out = k.rpc("genesys_oos.probe", r.uri)
    answered = time.monotonic() - t0
    assert answered < 1.0, answered
    req = parse_rpc_structs(out)
    assert len(req) == 1, out
    assert req[0]["uri"] == r.uri and req[0]["result"] == "pending", out
    assert "genesys_oos.list" in req[0]["result_in"], out
    seq = int(req[0]["probe"])
    assert seq == int(before["last_probe"]) + 1, (seq, before)
    assert re.search(r"NOTICE: .*genesys_oos\.probe of %s: probe %d requested "
                     r"\(result in genesys_oos\.list and the log\)"
                     % (re.escape(r.uri), seq), k.log_text())
    # the probe is on the wire and pending: ctl serves the next command
    r.wait_probes(2, 2)     # the requested probe left
    t1 = time.monotonic()
    row = target(k, r.uri)
    assert time.monotonic() - t1 < 1.0
    assert row["probe_pending"] == 1 and int(row["last_probe"]) < seq, row
    assert row["state"] == "active", row
    # the result: a timeout at oos_timeout (3 s), in the list and the log
    rx = re.compile(PROBE_LOG % (re.escape(r.uri), seq))
    while not rx.search(k.log_text()):
        assert time.monotonic() - t0 < 2 * 3.0 + 1.0 + 1.0, k.log_text()[-2000:]
        time.sleep(0.02)
    took = time.monotonic() - t0
    assert 2.9 < took, took
    m = rx.search(k.log_text())
    assert m.group(1, 2, 3, 4, 5) == ("down", "timeout", "0", "-1", "down"), \
        m.group(0)
    row = target(k, r.uri)
    assert int(row["last_probe"]) == seq, row
    assert (row["last_probe_result"], row["last_probe_reason"]) == \
        ("down", "timeout"), row
    assert row["probe_pending"] == 0 and row["state"] == "down", row
    assert ("down", r.uri, "active", "down", "timeout", "0") in events(k)
    assert not re.search(r"ERROR:", k.log_text()), k.log_text()[-2000:]


def _http_rpc(k, method, *params, timeout=15):
    """JSON-RPC over HTTP (jsonrpcs on kamailio's TCP listener): (seconds,
    decoded reply)"""
    conn = http.client.HTTPConnection(k.address, k.port, timeout=timeout)
    body = json.dumps({"jsonrpc": "2.0", "method": method,
                       "params": list(params), "id": 7})
    t0 = time.monotonic()
    try:
        conn.request("POST", "/RPC", body,
                     {"Content-Type": "application/json"})
        resp = conn.getresponse()
        data = resp.read()
    finally:
        conn.close()
    return time.monotonic() - t0, json.loads(data)


def test_rpc_probe_delayed_reply_over_http(kamailio_factory, responders):
    """Over a transport with delayed replies (jsonrpcs over HTTP) the
    answer of genesys_oos.probe is the probe's result, sent by the process
    that completes the probe (here the probe process, at oos_timeout); the
    RPC process is free meanwhile: kamcmd and another HTTP JSON-RPC are
    served at once."""
    k, r = _silent_after_first(kamailio_factory, responders, http=True)
    result = {}

    def ask():
        result["probe"] = _http_rpc(k, "genesys_oos.probe", r.uri)

    th = threading.Thread(target=ask)
    t0 = time.monotonic()
    th.start()
    r.wait_probes(2, 2)     # the requested probe left
    # both RPC transports serve other commands while the probe is pending
    t1 = time.monotonic()
    row = target(k, r.uri)
    assert time.monotonic() - t1 < 1.0
    assert row["probe_pending"] == 1, row
    took, reply = _http_rpc(k, "genesys_oos.list")
    assert took < 1.0, took
    assert [t["uri"] for t in reply["result"]] == [r.uri], reply
    assert th.is_alive(), result
    th.join(2 * 3.0 + 1.0 + 2.0)
    assert not th.is_alive(), "no HTTP reply to genesys_oos.probe"
    took, reply = result["probe"]
    assert 2.9 < took < 3.0 + 1.5, took
    res = reply["result"]
    assert (res["uri"], res["result"], res["reason"], res["code"],
            res["rtt_ms"], res["state"], res["forced"]) == (
        r.uri, "down", "timeout", 0, -1, "down", "no"), reply
    assert res["probe"] == int(target(k, r.uri)["last_probe"]), reply
    assert re.search(PROBE_LOG % (re.escape(r.uri), res["probe"]),
                     k.log_text())
    # an answered probe the same way: the result of its reply
    r.policy = lambda n, src: (200, 0)
    took, reply = _http_rpc(k, "genesys_oos.probe", r.uri)
    assert took < 1.0, took
    assert (reply["result"]["result"], reply["result"]["reason"],
            reply["result"]["code"]) == ("active", "reply", 200), reply
    # faults keep their codes through the delayed context's path
    _, reply = _http_rpc(k, "genesys_oos.probe", "sip:nobody@example.com")
    assert reply["error"]["code"] == 404, reply
    # a target released while its probe is awaited: a fault, within the
    # probe process's longest sleep (1 s), not at the probe's deadline
    r2 = responders(policy=lambda n, src: (None, 0))
    assert "added: yes" in k.rpc("genesys_oos.add", r2.uri)
    r2.wait_probes(1, 2)    # the added target's first probe
    th = threading.Thread(target=lambda: result.update(
        released=_http_rpc(k, "genesys_oos.probe", r2.uri)))
    th.start()
    # the request is waiting once it is logged
    deadline = time.monotonic() + 3
    while not re.search(r"genesys_oos\.probe of %s: probe \d+ requested\n"
                        % re.escape(r2.uri), k.log_text()):
        assert time.monotonic() < deadline, k.log_text()[-2000:]
        time.sleep(0.01)
    assert th.is_alive(), result
    t0 = time.monotonic()
    assert "released" in k.rpc("genesys_oos.remove", r2.uri)
    th.join(3)
    assert not th.is_alive(), "no HTTP reply after the target was released"
    assert time.monotonic() - t0 < 1.5, time.monotonic() - t0
    reply = result["released"][1]
    assert reply["error"] == {"code": 404,
                              "message": "Target released while probing"}, reply
    assert re.search(r"WARNING: .*genesys_oos\.probe of %s: probe \d+: Target "
                     r"released while probing" % re.escape(r2.uri),
                     k.log_text()), k.log_text()[-2000:]
    assert not re.search(r"ERROR:", k.log_text()), k.log_text()[-2000:]


def test_statistics(kamailio_factory, responders):
    """Kamailio statistics count probes, replies, timeouts, transport errors
    and state changes."""
    r = responders()
    silent = responders(policy=lambda n, src: (None, 0))
    closed = "sip:%s:5060" % harness.next_address()
    k = start_kamailio(kamailio_factory, [("oos_check", 1), ("oos_force", 1),
                                          ("oos_timeout", 300),
                                          ("target", r.uri), ("target", silent.uri),
                                          ("target", closed)])
    wait_state(k, r.uri, "active", timeout=5)
    wait_state(k, silent.uri, "down", timeout=5)
    wait_state(k, closed, "down", timeout=5)

    def counted():
        st = k.statistics("genesys_oos:")
        return st if (st["probes_sent"] >= 6 and st["replies"] >= 2
                      and st["timeouts"] >= 1) else None
    stats = wait_until(counted, 4, "6 probes, 2 replies, a timeout counted")
    rows = oos_list(k)
    sent = sum(t["probes_sent"] for t in rows)
    assert stats["probes_sent"] >= 6 and abs(stats["probes_sent"] - sent) <= 3, (stats, rows)
    assert stats["replies"] >= 2, stats
    assert stats["timeouts"] >= 1, stats
    assert stats["transport_errors"] >= 1, stats
    assert stats["state_changes"] == 3, stats


def test_probe_request_shape(kamailio_factory, responders):
    """The probe is an OPTIONS to the target URI with To = target, From =
    probe_from with a tag, Max-Forwards, sent from kamailio's socket."""
    r = responders()
    k = start_kamailio(kamailio_factory, {"oos_check": 1, "oos_force": 1,
                                          "oos_timeout": 400, "target": r.uri,
                                          "probe_from": "sip:monitor@pool.example.com"})
    wait_state(k, r.uri, "active", timeout=5)
    _, _, src = r.probes[0]
    assert src == (k.address, 5060), src
    req = r.requests[0]
    assert req.startswith("OPTIONS %s SIP/2.0\r\n" % r.uri), req
    assert re.search(r"^From: <sip:monitor@pool.example.com>;tag=\S+", req, re.M), req
    assert re.search(r"^To: <%s>" % re.escape(r.uri), req, re.M), req
    assert re.search(r"^Max-Forwards: \d+", req, re.M), req
    assert re.search(r"^Via: SIP/2.0/UDP %s(:5060)?;branch=z9hG4bK" % re.escape(k.address),
                     req, re.M), req


def test_default_probe_from(kamailio_factory, responders):
    r = responders()
    k = start_kamailio(kamailio_factory, dict(FAST, target=r.uri))
    wait_state(k, r.uri, "active", timeout=5)
    assert re.search(r"^From: <sip:genesys-oos@%s:5060>;tag=" % re.escape(k.address),
                     r.requests[0], re.M), r.requests[0]


# ---------------------------------------------------------------- bad params

@pytest.mark.parametrize("params,message", [
    ({"oos_check": 301}, r"modparam oos_check=301 is out of range \(allowed 0-300"),
    ({"oos_force": 0}, r"modparam oos_force=0 is out of range \(allowed 1-32"),
    ({"oos_force": 33}, r"modparam oos_force=33 is out of range \(allowed 1-32"),
    ({"oos_check": 2, "oos_timeout": 2500},
     r"modparam oos_timeout=2500 is out of range \(allowed 50-2000 ms"),
    ({"target": "sip:"}, r"modparam target='sip:' is not a valid SIP URI"),
    ({"target": "http://example.com/"},
     r"modparam target='http://example.com/' is not a valid SIP URI"),
    ({"fail_threshold": 0}, r"modparam fail_threshold=0 is out of range"),
    ({"probe_slots": 0}, r"modparam probe_slots=0 is out of range \(allowed 1-100"),
    ({"transport_check": 2}, r"modparam transport_check=2 is out of range \(allowed 0-1"),
    ({"send_socket": "udp:10.255.255.1:5060"},
     r"modparam send_socket='udp:10.255.255.1:5060' is not a listen socket"),
])
def test_bad_parameters_refuse_to_start(tmp_path, params, message):
    k = harness.Kamailio(tmp_path / "k", cfg_text=make_cfg(params))
    with pytest.raises(harness.HarnessError) as e:
        k.start()
    k.stop(check=False)
    log = k.log_text()
    assert re.search(message, log), log[-2000:]
    # one clear line from the module (the core adds its own "init_mod" line)
    ours = [l for l in log.splitlines() if re.search(r"ERROR: .*genesys_oos \[", l)]
    assert len(ours) == 1, ours
    assert "kamailio exited at start-up" in str(e.value)


def test_tcp_target_up_then_refused(kamailio_factory, sipp_factory, tmp_path):
    """A TCP target answered by a SIPp UAS over TCP is ACTIVE; when the
    server process dies its port refuses connections and the target is
    DOWN within one round trip of the next probe, not after oos_timeout."""
    addr = harness.next_address()
    uri = "sip:%s:5060;transport=tcp" % addr
    uas = sipp_factory(reply_scenario(tmp_path, 200), "tcpuas", address=addr,
                       transport="t1", calls=MANY).start()
    k = start_kamailio(kamailio_factory, {"oos_check": 1, "oos_force": 1,
                                          "oos_timeout": 1000, "target": uri})
    _, row = wait_state(k, uri, "active", timeout=5)
    assert row["last_code"] == 200, row
    uas.kill()
    took, row = wait_state(k, uri, "down", timeout=4)
    # at most one period until the next probe, then one round trip
    assert took < 1.0 + 0.5, took
    assert row["last_reason"] == "transport" and row["timeouts"] == 0, row


def test_probes_are_spread_over_the_period(kamailio_factory, responders):
    """Eight targets probed every second: their probes are spread over the
    period, not sent in one burst."""
    rs = [responders() for _ in range(8)]
    k = start_kamailio(kamailio_factory, [("oos_check", 1), ("oos_force", 1),
                                          ("oos_timeout", 300)]
                       + [("target", r.uri) for r in rs])
    for r in rs:
        wait_state(k, r.uri, "active", timeout=5)
    # two more periods: every target's last three probes in its rhythm
    counts = [len(r.probes) for r in rs]
    for r, n in zip(rs, counts):
        r.wait_probes(max(n + 2, 3), 4)
    # arrival phase of every target's last probe inside the 1 s period
    last = sorted(r.probes[-1][0] for r in rs)
    phases = sorted((t - last[0]) % 1.0 for t in last)
    gaps = [b - a for a, b in zip(phases, phases[1:])] + [1.0 - phases[-1] + phases[0]]
    assert max(gaps) < 0.5, phases        # no half-period hole: no burst
    assert sum(1 for g in gaps if g < 0.02) <= 2, phases
    # and each target keeps its own 1 s rhythm
    for r in rs:
        ts = [p[0] for p in r.probes[-3:]]
        for a, b in zip(ts, ts[1:]):
            assert 0.8 < b - a < 1.3, ts


def test_runtime_add_and_remove(kamailio_factory, responders):
    """Targets registered and released at runtime (the API path a pool
    reload uses, here through genesys_oos.add/remove): a reused slot starts
    fresh, and a reply still on its way for the released target never
    lands on the new one."""
    slow = responders(policy=lambda n, src: (200, 0.4))
    k = start_kamailio(kamailio_factory, {"oos_check": 1, "oos_force": 1,
                                          "oos_timeout": 800})
    assert oos_list(k) == []
    out = k.rpc_json("genesys_oos.add", slow.uri)
    assert out["id"] == 0, out
    _, row = wait_state(k, slow.uri, "active", timeout=5)
    # released while a probe is in flight; its 200 arrives 0.4 s later
    wait_until(lambda: target(k, slow.uri)["probe_pending"] == 1, 3,
               "a probe in flight", step=0.005)
    k.rpc("genesys_oos.remove", slow.uri)
    assert oos_list(k) == []
    closed = "sip:%s:5060" % harness.next_address()
    assert k.rpc_json("genesys_oos.add", closed)["id"] == 0   # same slot
    seen = set()
    t_end = time.monotonic() + 1.5
    while time.monotonic() < t_end:     # what is tested: never active
        row = target(k, closed)
        seen.add(row["state"])
        time.sleep(0.01)
    assert "active" not in seen, seen
    assert row["state"] == "down" and row["last_code"] == 0, row
    assert row["probes_sent"] <= 3, row

    # an unknown target cannot be removed (404); bad input (400)
    for args, code in ((("genesys_oos.remove", "sip:nobody@example.com"), 404),
                       (("genesys_oos.add", "not a uri"), 400),
                       (("genesys_oos.add",), 400)):
        res = k.rpc_raw(*args)
        assert res.stdout.startswith("error: %d " % code), (args, res.stdout)


def test_local_408_from_tm_is_a_timeout(tmp_path, kamailio_factory, responders):
    """With tm's fr_timer shorter than oos_timeout, tm's own 408 ends the
    probe: a timeout (DOWN), not an answer, though its code is 408."""
    silent = responders(policy=lambda n, src: (None, 0))
    k = kamailio_factory(cfg_text=make_cfg({"oos_check": 2, "oos_force": 2,
                                            "oos_timeout": 1900,
                                            "target": silent.uri},
                                           fr_timer=400))
    took, row = wait_state(k, silent.uri, "down", timeout=4)
    assert row["last_reason"] == "timeout" and row["last_code"] == 0, row
    assert re.search(r"target %s state unknown -> down \(timeout: local 408 "
                     r"from tm\)" % re.escape(silent.uri), k.log_text())
    # decided by tm's 400 ms, not by our 1900 ms deadline
    res, took = rpc_probe(k, silent.uri)
    assert (res["result"], res["reason"]) == ("down", "timeout"), res
    assert took < 1.5, took


def test_oos_check_zero_disables_periodic_probing(kamailio_factory, responders):
    """oos_check=0: nothing is probed on its own (targets stay unknown), but
    an RPC probe or a passive report still probes."""
    r = responders()
    k = start_kamailio(kamailio_factory, {"oos_check": 0, "oos_force": 1,
                                          "oos_timeout": 500, "target": r.uri})
    time.sleep(1.5)     # what is tested: nothing is probed in that time
    row = target(k, r.uri)
    assert row["state"] == "unknown" and row["probes_sent"] == 0, row
    assert r.probes == []
    res, _ = rpc_probe(k, r.uri)
    assert res["result"] == "active", res
    assert target(k, r.uri)["state"] == "active"
    send_message(k, {"X-Report": "failure", "X-Target": r.uri})
    r.wait_probes(2, 2)
    assert len(r.probes) == 2, r.probes
    time.sleep(1.5)     # what is tested: no periodic probe follows
    assert len(r.probes) == 2, r.probes


def _probe_process_cpu(k):
    """CPU seconds (user+sys) used so far by the genesys_oos probe process."""
    procs = k.processes()
    pids = [p for p, d in procs if "GENESYS_OOS PROBE" in d]
    assert len(pids) == 1, procs
    fields = open("/proc/%d/stat" % pids[0]).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(harness.os.sysconf(
        "SC_CLK_TCK"))


def probing(kamailio_factory, r, period, oos_timeout, wait):
    """a kamailio probing the responder r every `period` s (oos_check and
    oos_force; oos_timeout in ms), once it has seen r active (within
    `wait` s)"""
    k = start_kamailio(kamailio_factory, {"oos_check": period,
                                          "oos_force": period,
                                          "oos_timeout": oos_timeout,
                                          "target": r.uri})
    wait_state(k, r.uri, "active", timeout=wait)
    return k


def test_probe_process_sleeps_between_events(kamailio_factory, responders):
    """The probe process sleeps in poll() until its next planned event. A
    probe requested shortly before the next periodic one, answered at once,
    used to leave its (stale) deadline as the event the pass waited for
    while poll() woke for the earlier due time: the process spun at full
    CPU until that deadline (1.5 s of CPU in this test before the fix).
    Requested probes at several offsets of the period must cost next to no
    CPU."""
    r = responders()
    k = probing(kamailio_factory, r, 2, 1900, 4)
    before = _probe_process_cpu(k)
    t0 = time.monotonic()
    # one requested probe at a time, then quiet for longer than the period:
    # nothing but the probe process's own planning wakes it
    for i in range(4):
        res, _ = rpc_probe(k, r.uri)
        assert res["result"] == "active", res
        time.sleep(2.1 + 0.3 * i)   # what is tested: the quiet time's CPU
    elapsed = time.monotonic() - t0
    used = _probe_process_cpu(k) - before
    # a spin costs a whole core for up to oos_timeout per probe (seconds
    # here); the real work is a few milliseconds
    assert used < 0.25, "probe process used %.2f s CPU in %.1f s" % (
        used, elapsed)
    assert target(k, r.uri)["state"] == "active"


@pytest.mark.parametrize("how", ["report", "rpc"])
def test_probe_requested_while_one_is_pending_does_not_spin(
        kamailio_factory, responders, how):
    """A probe requested (oos_report_failure(), i.e. the API's
    report_failure/probe_now, or genesys_oos.probe) while an earlier probe to
    a silent (blackholed) target is still pending waits for that probe's
    result: the request used to make the probe process's next event "now"
    while nothing could be sent before the pending probe's deadline, and the
    process spun at 100 % CPU until that deadline. The requested probe still
    leaves as soon as the pending one is over."""
    r = responders(policy=lambda n, src: (200, 0) if n == 0 else (None, 0))
    k = probing(kamailio_factory, r, 30, 2500, 3)
    # a first requested probe: the target is silent now, it stays pending
    send_message(k, {"X-Report": "failure", "X-Target": r.uri})
    r.wait_probes(2, 2)
    t_pending = r.probes[1][0]
    assert target(k, r.uri)["probe_pending"] == 1
    before = _probe_process_cpu(k)
    t0 = time.monotonic()
    # a second request while it is pending
    if how == "report":
        line = send_message(k, {"X-Report": "failure", "X-Target": r.uri})
        assert line == "SIP/2.0 200 rc=1", line
        # over the rest of the pending probe's deadline (2.5 s)
        wait_state(k, r.uri, "down", timeout=3.5)
    else:
        res, _ = rpc_probe(k, r.uri)
        # the pending probe times out, then the requested one does too
        assert (res["result"], res["reason"]) == ("down", "timeout"), res
    elapsed = time.monotonic() - t0
    used = _probe_process_cpu(k) - before
    assert elapsed > 1.5, elapsed
    assert used / elapsed < 0.05, (
        "probe process used %.2f s CPU in %.1f s while a probe was pending"
        % (used, elapsed))
    # the requested probe was not lost: it left when the pending one ended
    r.wait_probes(3, 1)
    assert 2.4 < r.probes[2][0] - t_pending < 2.5 + 0.4, (
        r.probes[2][0] - t_pending)


def test_probe_requested_while_one_is_pending_leaves_after_its_reply(
        kamailio_factory, responders):
    """A probe requested while an earlier one waits for a slow (0.8 s) reply
    leaves as soon as that reply completed the earlier probe (in a SIP
    worker, which wakes the probe process), not at the earlier probe's
    deadline nor at the next period; and the wait costs no CPU."""
    r = responders(policy=lambda n, src: (200, 0) if n == 0 else (200, 0.8))
    k = probing(kamailio_factory, r, 30, 2500, 3)
    before = _probe_process_cpu(k)
    t0 = time.monotonic()
    send_message(k, {"X-Report": "failure", "X-Target": r.uri})
    r.wait_probes(2, 2)
    line = send_message(k, {"X-Report": "failure", "X-Target": r.uri})
    assert line == "SIP/2.0 200 rc=1", line
    r.wait_probes(3, 3)
    gap = r.probes[2][0] - r.probes[1][0]
    assert 0.75 < gap < 0.8 + 0.3, gap
    row = wait_row(k, r.uri, settled(3), 2, "the slow reply received")
    assert row["state"] == "active" and row["timeouts"] == 0, row
    elapsed = time.monotonic() - t0
    used = _probe_process_cpu(k) - before
    assert used / elapsed < 0.05, (used, elapsed)


def test_transport_check_survives_restarts(kamailio_factory, responders):
    """A SIP Server killed and restarted five times: every death is seen in
    one round trip by the transport check (ICMP port unreachable), never by
    the probe timeout. The restarted server answers tm's retransmission of
    the very probe whose check saw the ICMP error (a late reply): that used
    to turn the check off for good, and every later crash waited for
    oos_timeout. A late answer to a retransmission is no evidence against
    the check: only an answer within one round trip (before tm's first
    retransmission) is."""
    r = responders()
    addr = r.address
    k = probing(kamailio_factory, r, 1, 1000, 3)
    late = 0
    for i in range(5):
        r.stop()                                    # the process dies
        took, row = wait_state(k, r.uri, "down", timeout=3, step=0.01)
        assert row["last_reason"] == "transport", (i, row)
        assert row["timeouts"] == 0, (i, row)
        # at most one period (1 s) until the next probe, plus one round trip
        assert took < 1.0 + 0.3, (i, took)
        r = responders(address=addr)                # and is restarted
        _, row = wait_state(k, r.uri, "active", timeout=3, step=0.01)
        # the restarted server answered the failed probe's retransmission
        # (a late reply), which must not switch the check off
        assert row["late_replies"] > late, (i, row)
        late = row["late_replies"]
        assert row["transport_check"] == "on", (i, row)
    assert "check is off" not in k.log_text()


# ---------------------------------------------------------------- run time

def _wait_probes(r, count, timeout):
    """Wait until responder r has seen `count` probes; returns their times."""
    r.wait_probes(count, timeout)
    return [p[0] for p in r.probes]


def _set_now(k, var, value):
    """cfg.set_now_int genesys_oos <var> <value>; raises on an RPC error"""
    return k.rpc_json("cfg.set_now_int", "genesys_oos", var, value)


def _one_second_period_at_once(k, param, resp, count, timeout):
    """right after a probe of resp, param (oos_check or oos_force) set to 1:
    the next `count` probes of resp (within timeout s) come 1 s apart"""
    n = len(resp.probes)
    _wait_probes(resp, n + 1, 3.5)
    _set_now(k, param, 1)
    times = _wait_probes(resp, n + count, timeout)[n:n + count]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert all(0.85 < g < 1.25 for g in gaps), gaps


def test_oos_check_and_oos_force_change_at_run_time(kamailio_factory,
                                                    responders):
    """cfg.set_now_int genesys_oos oos_check|oos_force takes effect at once
    (seed 000: "Changes Take Effect: Immediately"): the next probe comes one
    new period after the last one, not after the old period; 0 for
    oos_check stops periodic probing and a value back starts it again at
    once; a value outside the modparam's range is refused with an error
    naming the range, and the value in force stays."""
    up = responders()
    silent = responders(policy=lambda n, src: (None, 0))
    k = start_kamailio(kamailio_factory, [
        ("oos_check", 3), ("oos_force", 3), ("oos_timeout", 1000),
        ("target", up.uri), ("target", silent.uri)])
    wait_state(k, up.uri, "active", timeout=3)
    wait_state(k, silent.uri, "down", timeout=3)

    # oos_check 3 -> 1 right after a probe of the answering target
    _one_second_period_at_once(k, "oos_check", up, 5, 6)
    # oos_force 3 -> 1 right after a probe of the silent (down) target
    _one_second_period_at_once(k, "oos_force", silent, 4, 5)
    assert k.rpc_json("cfg.get", "genesys_oos", "oos_check") == 1
    assert k.rpc_json("cfg.get", "genesys_oos", "oos_force") == 1
    k.wait_log(r"NOTICE: genesys_oos .*oos_check 3 -> 1 s, oos_force 3 -> 3 s")

    # 0: no periodic probe (the pending ones end within oos_timeout)
    _set_now(k, "oos_check", 0)
    wait_until(lambda: all(t["probe_pending"] == 0 for t in oos_list(k)),
               1.5, "no probe pending")
    n, m = len(up.probes), len(silent.probes)
    time.sleep(2.0)     # what is tested: no probe in two periods
    assert (len(up.probes), len(silent.probes)) == (n, m)
    # and back: probed again at once (spread over at most one second: the
    # first target's phase is 0, so it is probed as soon as the probe
    # process is woken, not at its next wake-up a second later)
    t0 = time.monotonic()
    _set_now(k, "oos_check", 2)
    _wait_probes(up, n + 1, 1.5)
    assert up.probes[-1][0] - t0 < 0.3, up.probes[-1][0] - t0
    _wait_probes(silent, m + 1, 1.5)
    assert time.monotonic() - t0 < 1.2

    # out of range: refused, the value in force stays
    for var, value, allowed in [("oos_check", 301, "0-300"),
                                ("oos_check", 3600, "0-300"),
                                ("oos_force", 0, "1-32"),
                                ("oos_force", 33, "1-32")]:
        start = len(k.log_text())
        r = k.rpc_fault("cfg.set_now_int", "genesys_oos", var, value)
        assert r.code == 400, r
        k.wait_log(r"ERROR: .*integer value is out of range\n.*ERROR: .*"
                   r"failed to set the variable: genesys_oos\.%s\n" % var,
                   start=start)
        # the range is in the variable's help (kamcmd: cfg.help adds two
        # values, a JSON-RPC answer carries only the last one)
        assert allowed in k.rpc("cfg.help", "genesys_oos", var)
    assert k.rpc_json("cfg.get", "genesys_oos", "oos_check") == 2
    assert k.rpc_json("cfg.get", "genesys_oos", "oos_force") == 1
    assert target(k, up.uri)["state"] == "active"


def test_shorter_period_at_run_time_shortens_the_deadline(kamailio_factory,
                                                          responders):
    """With the reference values (5 s, 5 s, oos_timeout 4000 ms), oos_check
    2 is accepted at run time: the probe deadline becomes the new period
    (2 s) instead of outliving it, so a silent target is down after 2 s."""
    k = start_kamailio(kamailio_factory, {"oos_check": 5, "oos_force": 5,
                                          "oos_timeout": 4000})
    _set_now(k, "oos_check", 2)
    k.wait_log(r"oos_check 5 -> 2 s, oos_force 5 -> 5 s: .*probe deadline "
               r"2000 ms \(oos_timeout shortened to the shortest period\)")
    silent = responders(policy=lambda n, src: (None, 0))
    t0 = time.monotonic()
    k.rpc("genesys_oos.add", silent.uri)
    wait_state(k, silent.uri, "down", timeout=5)
    took = time.monotonic() - t0
    # first probe within the first second, then 2 s (not 4 s) of silence
    assert 1.9 < took < 3.3, took
    assert target(k, silent.uri)["last_reason"] == "timeout"


def _csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    s = (s >> 16) + (s & 0xffff)
    s += s >> 16
    return ~s & 0xffff


def _forge_port_unreachable(orig_src, orig_dst, payload):
    """Send the ICMP port unreachable a firewall at orig_dst would send for
    the UDP datagram orig_src -> orig_dst (raw socket: needs root)."""
    udp_len = 8 + len(payload)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, 0, 0, 64, 17, 0,
                     socket.inet_aton(orig_src[0]),
                     socket.inet_aton(orig_dst[0]))
    ip = ip[:10] + struct.pack("!H", _csum(ip)) + ip[12:]
    udp = struct.pack("!HHHH", orig_src[1], orig_dst[1], udp_len, 0)
    icmp = struct.pack("!BBHI", 3, 3, 0, 0) + ip + udp + payload
    icmp = icmp[:2] + struct.pack("!H", _csum(icmp)) + icmp[4:]
    send_raw(socket.IPPROTO_ICMP, orig_dst[0], icmp, orig_src[0])


def test_transport_check_off_when_a_firewall_rejects_it(kamailio_factory,
                                                        responders):
    """A firewall in front of the SIP Server rejects (ICMP port unreachable,
    forged here with a raw socket) the check's datagrams, which leave from
    another port than the SIP socket, while the server answers the probe
    itself in one round trip (50 ms): the module sees the contradiction,
    warns, turns the check off for that target, and the target is active
    from then on (the restart case above must not do this)."""
    try:
        socket.socket(socket.AF_INET, socket.SOCK_RAW,
                      socket.IPPROTO_ICMP).close()
    except PermissionError:
        pytest.skip("forging ICMP needs a raw socket (root)")
    checks = []

    def firewall(data, src, sock):
        if data == b"\r\n\r\n":
            checks.append(src)
            _forge_port_unreachable(src, sock.getsockname(), data)

    r = responders(policy=lambda n, src: (200, 0.05), on_other=firewall)
    k = start_kamailio(kamailio_factory, {"oos_check": 1, "oos_force": 1,
                                          "oos_timeout": 1000,
                                          "target": r.uri})
    k.wait_log(r"WARNING: .*genesys_oos .*target %s answered probe \d+ "
               r"\(200 in \d+ ms\) after its transport check reported an "
               r"error: the check is off for this target" % re.escape(r.uri),
               timeout=4)
    _, row = wait_state(k, r.uri, "active", timeout=2)
    assert row["transport_check"] == "off", row
    assert row["transport_errors"] == 1, row
    assert checks, "no transport check datagram reached the target"
    n = len(checks)
    # two more probes (answered 50 ms later), without check datagrams
    wait_row(k, r.uri, settled(int(row["probes_sent"]) + 2), 4,
             "two more probes")
    row = target(k, r.uri)
    assert row["state"] == "active" and row["transport_errors"] == 1, row
    assert len(checks) == n          # no check datagram any more
    assert len(r.probes) >= 3
