"""The failover benchmark's own pieces (bench/failover/): the hot-standby
SIP Server stand-in, and a small run of the whole tool (SIPp calls through
a real kamailio while the primary is killed) that must produce sane,
complete results and leave no process behind."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import xml.dom.minidom

import harness

FAILOVER = harness.TOP / "bench" / "failover"
sys.path.insert(0, str(FAILOVER))

import failover  # noqa: E402


def _request(sock, dest, method, callid):
    addr, port = sock.getsockname()
    msg = ("%s sip:sips@%s:%d SIP/2.0\r\n"
           "Via: SIP/2.0/UDP %s:%d;branch=z9hG4bK%s\r\n"
           "From: <sip:t@%s>;tag=a\r\nTo: <sip:sips@%s>%s\r\n"
           "Call-ID: %s\r\nCSeq: 1 %s\r\nMax-Forwards: 70\r\n"
           "Content-Length: 0\r\n\r\n"
           % (method, dest[0], dest[1], addr, port, callid, addr, dest[0],
              ";tag=b" if method == "BYE" else "", callid, method))
    sock.sendto(msg.encode(), dest)
    try:
        data, _ = sock.recvfrom(65535)
    except socket.timeout:
        return None
    return data.decode(errors="replace").split("\r\n", 1)[0]


def test_standby_sipserver_ignores_until_promoted(tmp_path):
    addr = harness.next_address()
    stats = tmp_path / "backup.json"
    log = open(tmp_path / "backup.log", "wb")
    p = subprocess.Popen(["/usr/bin/python3", str(FAILOVER / "sipserver.py"),
                          "--address", addr, "--standby", "--stats", str(stats)],
                         stdout=log, stderr=subprocess.STDOUT,
                         start_new_session=True)
    log.close()
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        failover.wait_ready(p, tmp_path / "backup.log", 10, "sipserver.py")
        s.bind((harness.next_address(), 0))
        s.settimeout(0.5)
        # hot standby: bound (no ICMP, so recvfrom times out), silent
        assert _request(s, (addr, 5060), "OPTIONS", "o1") is None
        p.send_signal(signal.SIGUSR1)
        # the signal is handled asynchronously: a request that arrives at
        # the same time may still be ignored, so ask again until answered
        s.settimeout(0.2)
        deadline = time.monotonic() + 5
        while _request(s, (addr, 5060), "OPTIONS", "o2") != "SIP/2.0 200 Peer":
            assert time.monotonic() < deadline, "not promoted"
        s.settimeout(3)
        # the BYE of a call set up on the other member: 200, counted
        assert _request(s, (addr, 5060), "BYE", "call-of-primary") == "SIP/2.0 200 Peer"
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=5) == 0
    finally:
        s.close()
        if p.poll() is None:
            p.kill()
            p.wait()
    data = json.loads(stats.read_text())
    assert data["bye_unknown_dialog_answered"] == 1
    assert data["requests"]["BYE"] == 1
    assert data["promoted_at_monotonic"] is not None


def test_small_failover_run(tmp_path):
    """20 calls/s for 5 s, the primary killed 2 s in: every call accounted
    for, the backup takes over under both proxies, dispatcher loses the BYEs
    of the calls set up on the primary (it cannot route them to the pair),
    report files written, nothing left running."""
    out = tmp_path / "fo"
    # the tool's work directory: short (kamailio's ctl socket path must
    # stay under 104 characters), and only this run's processes use it
    work = tempfile.mkdtemp(prefix="fo-", dir="/tmp")
    try:
        _small_run(tmp_path, out, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _small_run(tmp_path, out, work):
    p = subprocess.run(
        ["/usr/bin/python3", str(FAILOVER / "failover.py"),
         "--configs", "genesys_ha_1s,dispatcher", "--variants", "kill",
         "--repeats", "1", "--rate", "20", "--duration", "5", "--hold", "1",
         "--kill-at", "2", "--children", "2", "--out", str(out)],
        capture_output=True, text=True, timeout=150,
        env=dict(os.environ, TMPDIR=work))
    assert p.returncode == 0, p.stdout + p.stderr
    res = {r["config"]: r for r in json.loads(
        (tmp_path / "fo.json").read_text())["results"]}
    assert set(res) == {"genesys_ha_1s", "dispatcher"}
    for name, r in res.items():
        assert r["calls"] == r["expected_calls"] == 100, (name, r["calls"])
        assert r["failed"] == r["inv_failed"] + r["bye_failed"]
        assert r["first_backup_answer_s"] is not None, name
        assert 0.5 < r["first_backup_answer_s"] < 6, name
        assert r["pre_failure_byes"] > 0, name
        assert not r["kamailio_log_failures"], r["kamailio_log_failures"]
    assert res["dispatcher"]["pre_failure_byes_ok"] == 0
    # the backup's own count of BYEs of dialogs it never saw matches the UAC
    g = res["genesys_ha_1s"]
    assert g["backup"]["bye_unknown_dialog_answered"] >= g["pre_failure_byes_ok"]
    assert "| genesys_ha_1s | kill | 1 | 100 |" in (tmp_path / "fo.md").read_text()
    xml.dom.minidom.parse(str(tmp_path / "fo.svg"))
    left = subprocess.run(["pgrep", "-f", work],
                          capture_output=True, text=True).stdout.split()
    assert not left, "processes left running: %s" % left
