"""genesys_ha runtime state (issue 9 point 7): pair state outside the pool
snapshots survives reloads racing switchovers; event routes run in the
genesys_ha event process; $ha(...) travels with the transaction."""

import os
import re
import threading
import time

import ha_util as hu
from ha_util import pool, wait_pool


def both_up(name):
    return lambda p: (p[name]["members"]["backup"]["state"] == "active"
                      and p[name]["members"]["primary"]["state"] == "active"
                      and p[name]["state"] == "up")


def silent_primary(tmp_path, kamailio_factory, peer_factory, cfg_text):
    """a proxy (cfg_text) for the pair SIPS_A whose primary answers OPTIONS
    only (a relayed INVITE to it times out), both members seen up ->
    (pri, bak, proxy)"""
    pri = peer_factory(answer_requests=False)
    bak = peer_factory()
    path = hu.write_pool(tmp_path / "pool.xml",
                         [("SIPS_A", pri.uri, bak.uri, None)])
    k = hu.start_proxy(kamailio_factory, path, cfg_text=cfg_text)
    wait_pool(k, both_up("SIPS_A"), what="both active")
    return pri, bak, k


def test_switchovers_racing_reloads_last_decision_wins(
        tmp_path, kamailio_factory, peer_factory):
    """50 reloads (the pool file alternately rewritten unchanged and with
    another pair added or removed) race 50 operator switchovers of SIPS_A
    and three member-driven switchovers of SIPS_B (its active member stops
    answering OPTIONS, then answers again): after every operator switchover
    the pool shows the member it chose and a new INVITE goes to it; at the
    end SIPS_B is on the member its last switchover chose with its three
    switchovers counted, and every reload was published."""
    a1, a2, b1, b2, x1, x2 = (peer_factory() for _ in range(6))
    path = tmp_path / "pool.xml"
    base = [("SIPS_A", a1.uri, a2.uri, None), ("SIPS_B", b1.uri, b2.uri, None)]
    one = hu.pool_xml(base)
    two = hu.pool_xml(base + [("SIPS_X", x1.uri, x2.uri, None)])
    path.write_text(one)
    k = hu.start_proxy(kamailio_factory, str(path),
                       defines={"SERVING_SIPSERVER": '"SIPS_A"'})
    wait_pool(k, lambda p: both_up("SIPS_A")(p) and both_up("SIPS_B")(p),
              what="both pairs up")

    done = threading.Event()
    stop_reloads = threading.Event()
    errors = []
    reloads = [0]

    def reloader():
        try:
            i = 0
            while i < 50 or not stop_reloads.is_set():
                # unchanged, touched (same text rewritten), another pair
                path.write_text((one, one, two)[i % 3])
                out = k.rpc_json("genesys_ha.reload")
                assert "loaded" in out, out
                i += 1
                reloads[0] = i
        except Exception as e:  # reported by the main thread
            errors.append(e)
        finally:
            done.set()

    def flapper():
        # SIPS_B's active member stops answering: genesys_oos sees it down
        # (probe process) and the pair switches while reloads go on
        try:
            peers = {"primary": b1, "backup": b2}
            for j in range(3):
                act = pool(k)["SIPS_B"]["active"]
                other = "backup" if act == "primary" else "primary"
                peers[act].options_code = None
                wait_pool(k, lambda p: p["SIPS_B"]["active"] == other,
                          what="SIPS_B switched to %s" % other)
                peers[act].options_code = 200
                wait_pool(k, both_up("SIPS_B"), what="SIPS_B up")
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=reloader),
               threading.Thread(target=flapper)]
    for t in threads:
        t.start()
    n_a1, n_a2 = 0, 0
    try:
        for i in range(50):
            out = k.rpc_json("genesys_ha.switchover", "SIPS_A")
            m = re.search(r"active member is now the (primary|backup)", out)
            assert m, out
            role = m.group(1)
            p = pool(k)
            assert p["SIPS_A"]["active"] == role, (i, out, p["SIPS_A"])
            status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address)
            assert status and status.startswith("SIP/2.0 200"), (i, status)
            want, other = (a1, a2) if role == "primary" else (a2, a1)
            n_a1 += role == "primary"
            n_a2 += role == "backup"
            got = len(want.requests("INVITE"))
            assert got == (n_a1 if want is a1 else n_a2), \
                (i, role, got, n_a1, n_a2)
            assert len(other.requests("INVITE")) == \
                (n_a2 if want is a1 else n_a1)
        threads[1].join(30)
    finally:
        stop_reloads.set()
        done.wait(60)
        for t in threads:
            t.join(10)
    assert not errors, errors
    assert reloads[0] >= 50
    p = pool(k)
    assert p["SIPS_A"]["active"] == "primary"     # 50 switchovers: even
    assert p["SIPS_A"]["switchovers"] == 50, p["SIPS_A"]
    assert p["SIPS_A"]["new_dialogs"] == 50, p["SIPS_A"]
    assert p["_pool"]["generation"] == reloads[0] + 1, p["_pool"]
    # SIPS_B: the three member-driven switchovers are all there
    p = wait_pool(k, both_up("SIPS_B"), what="SIPS_B up")
    n_b = p["SIPS_B"]["switchovers"]
    assert n_b == 3, p["SIPS_B"]
    assert p["SIPS_B"]["active"] == "backup", p["SIPS_B"]
    log = k.log_text()
    assert len(re.findall(r"SIP Server pair 'SIPS_B': switchover from", log)) \
        == n_b


def processes(k):
    """core.psx -> {pid: description}"""
    return dict(k.processes())


def cpu_seconds(pid):
    """CPU seconds (user+sys) used so far by process pid."""
    fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(
        os.sysconf("SC_CLK_TCK"))


def pid_cfg():
    """The reference cfg whose event routes also log the process ($pp)."""
    text = hu.reference_cfg()
    text, n = re.subn(r'(xlog\("L_[A-Z]+", "event genesys-ha:[^"]*?)\\n"\)',
                      r'\1 [pid $pp]\\n")', text)
    assert n == 3, n
    return text


def test_event_routes_run_in_the_event_process(tmp_path, kamailio_factory,
                                               peer_factory):
    """A switchover decided in failure_route (relay failure: tm's timer
    process, under tm's reply lock) and one decided by a probe result (the
    genesys_oos probe process, in its state callback): both event routes
    run in the "GENESYS_HA EVENTS" process, with $ha(...) showing the
    event (logs and counters stay where the event is decided); the process
    costs next to no CPU."""
    pri, bak, k = silent_primary(tmp_path, kamailio_factory, peer_factory,
                                 pid_cfg())
    procs = processes(k)
    ev_pids = [p for p, d in procs.items() if d == "GENESYS_HA EVENTS"]
    assert len(ev_pids) == 1, procs
    ev_pid = ev_pids[0]
    cpu0, t0 = cpu_seconds(ev_pid), time.monotonic()
    # 1. failure_route: the INVITE to the primary times out, retried on the
    # backup, the pair switches (relay-failure)
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address,
                               timeout=8)
    assert status and status.startswith("SIP/2.0 200"), status
    m = k.wait_log(r"event genesys-ha:switchover: pair SIPS_A now uses backup "
                   r"%s \(was %s, trigger relay-failure\) \[pid (\d+)\]"
                   % (re.escape(bak.uri), re.escape(pri.uri)))
    assert int(m.group(1)) == ev_pid, (m.group(0), procs)
    # 2. a probe result: the backup stops answering, the pair goes back to
    # the primary (no-answer)
    bak.options_code = None
    m = k.wait_log(r"event genesys-ha:switchover: pair SIPS_A now uses "
                   r"primary %s \(was %s, trigger no-answer\) \[pid (\d+)\]"
                   % (re.escape(pri.uri), re.escape(bak.uri)))
    assert int(m.group(1)) == ev_pid, (m.group(0), procs)
    # 3. both silent: pair-down, then pair-up, also there
    pri.options_code = None
    m = k.wait_log(r"event genesys-ha:pair-down: pair SIPS_A is out of "
                   r"service \[pid (\d+)\]")
    assert int(m.group(1)) == ev_pid
    pri.options_code = 200
    m = k.wait_log(r"event genesys-ha:pair-up: pair SIPS_A is back, primary "
                   r"%s answers \[pid (\d+)\]" % re.escape(pri.uri))
    assert int(m.group(1)) == ev_pid
    # waking every 20 ms to look at the queue costs next to nothing
    used, elapsed = cpu_seconds(ev_pid) - cpu0, time.monotonic() - t0
    assert used < 0.05 * elapsed, "event process: %.2f s CPU in %.1f s" % (
        used, elapsed)


def ha_log_cfg():
    """The reference cfg logging $ha(...) and the process in request_route
    and in failure_route[HA_FAILOVER] (before and after ha_failover())."""
    text = hu.reference_cfg()
    fr = "failure_route[HA_FAILOVER] {\n"
    assert fr in text
    text = text.replace(fr, fr + '\txlog("L_NOTICE", "FR-HA pair=$ha(pair) '
                        'role=$ha(role) member=$ha(member) state=$ha(state) '
                        'dn=$ha(dn) pid=$pp\\n");\n', 1)
    # route[HA_RETRY], which failure_route[HA_FAILOVER] calls
    fo = "\t\t$var(rc) = ha_failover();\n\t\tif ($var(rc) > 0) {\n"
    assert text.count(fo) == 1
    text = text.replace(fo, fo + '\t\t\txlog("L_NOTICE", "FR-HA-RETRY '
                        'role=$ha(role) member=$ha(member) dn=$ha(dn) '
                        'pid=$pp\\n");\n', 1)
    rq = "\t\tha_record_route();\n\t\t# from a registered phone"
    assert text.count(rq) == 1
    text = text.replace(rq, '\t\tha_record_route();\n\t\txlog("L_NOTICE", '
                        '"RQ-HA pair=$ha(pair) pid=$pp\\n");\n'
                        '\t\t# from a registered phone', 1)
    return text


def test_ha_pv_in_failure_route_of_another_process(tmp_path, kamailio_factory,
                                                   peer_factory):
    """The INVITE to the primary gets no answer: failure_route runs on the
    fr timeout in tm's timer process, not in the worker that ran
    request_route; $ha(pair), role, member, state and dn there are what
    request_route chose ($xavp(gha) carried by the transaction), and after
    ha_failover() they name the backup."""
    pri, bak, k = silent_primary(tmp_path, kamailio_factory, peer_factory,
                                 ha_log_cfg())
    status, _ = hu.udp_request(k, "INVITE", "sip:2000@%s" % k.address,
                               timeout=8, body_from="7001")
    assert status and status.startswith("SIP/2.0 200"), status
    rq = k.wait_log(r"RQ-HA pair=SIPS_A pid=(\d+)")
    fr = k.wait_log(r"FR-HA pair=(\S+) role=(\S+) member=(\S+) state=(\S+) "
                    r"dn=(\S+) pid=(\d+)")
    assert fr.group(6) != rq.group(1), (rq.group(0), fr.group(0))
    procs = processes(k)
    assert "timer" in procs[int(fr.group(6))].lower(), procs
    assert fr.groups()[:5] == ("SIPS_A", "primary", pri.uri, "up", "7001"), \
        fr.group(0)
    retry = k.wait_log(r"FR-HA-RETRY role=(\S+) member=(\S+) dn=(\S+) "
                       r"pid=(\d+)")
    assert retry.groups() == ("backup", bak.uri, "7001", fr.group(6)), \
        retry.group(0)
