"""genesys_oos at scale (issue 10 goals 2 and 3): the target table grows
with the pool, an impossible size stops the start with the parameter named,
and the UDP transport check needs no descriptor per target."""

import resource
import re
import time

import pytest

import harness
import ha_util as hu
from oos_responder import ManyResponder, member_address
from sip_peer import wait_until
from test_oos_util import make_cfg


@pytest.fixture
def many(peer_factory):
    return lambda **kw: peer_factory(ManyResponder, **kw)


def _pairs(n, resp, octet2):
    return [("SIPS_%04d" % i, resp.uri(member_address(2 * i, octet2)),
             resp.uri(member_address(2 * i + 1, octet2)), None)
            for i in range(n)]


def test_reference_cfg_starts_with_1000_pairs(tmp_path, kamailio_factory, many):
    """1,000 pairs (2,000 members, more than the 256 targets the table had
    before it grew on demand) start with the reference config, its probing
    values and the memory sizes of the tests (-m 64 -M 8); every member is
    probed (the first probes are spread over one second) and answers from
    its own address."""
    resp = many()
    path = hu.write_pool(tmp_path / "pool.xml", _pairs(1000, resp, 251))
    t0 = time.monotonic()
    k = hu.start_proxy(kamailio_factory, path,
                       oos={"oos_check": 5, "oos_force": 5,
                            "oos_timeout": 4000})
    # every member probed and active (genesys_oos.list of 2,000 targets is
    # more than kamcmd takes: the log lines of the state changes count)
    deadline = time.monotonic() + 20
    while True:
        up = set(re.findall(r"target (sip:\S+) state unknown -> active",
                            k.log_text()))
        if len(up) == 2000:
            break
        assert time.monotonic() < deadline, (
            "active %d of 2000 after %.1fs" % (len(up), time.monotonic() - t0))
        time.sleep(0.2)
    assert up == {resp.uri(member_address(i, 251)) for i in range(2000)}
    assert len(resp.stats) == 2000
    assert "cannot register" not in k.log_text()


def test_max_targets_too_small_names_the_parameter(tmp_path, many):
    """A pool that needs more targets than max_targets allows: the start
    fails with a line naming max_targets (and genesys_ha names the member)."""
    resp = many()
    path = hu.write_pool(tmp_path / "pool.xml", _pairs(60, resp, 251))
    cfg = hu.reference_cfg(dict(hu.FAST_OOS, max_targets=100))
    k = harness.Kamailio(tmp_path / "k", cfg_text=cfg,
                         defines={"POOL_FILE": '"%s"' % path})
    with pytest.raises(harness.HarnessError) as ei:
        k.start()
    k.stop(check=False)
    assert "exited at start-up" in str(ei.value)
    log = k.log_text()
    assert re.search(r"ERROR: genesys_oos .*target "
                     r"\[sip:127\.251\.0\.101:\d+\] refused: max_targets=100 "
                     r"reached \(100 targets registered", log), log[-3000:]
    assert re.search(r"genesys_oos refused target sip:127\.251\.0\.101:\d+ "
                     r"\(line \d+\)", log), log[-3000:]


def test_max_targets_out_of_range_is_refused(tmp_path):
    k = harness.Kamailio(tmp_path / "k",
                         cfg_text=make_cfg({"max_targets": 1048576}))
    with pytest.raises(harness.HarnessError):
        k.start()
    k.stop(check=False)
    assert "modparam max_targets=1048576 is out of range (allowed " \
        "0-1048575 targets, 0 = no limit)" in k.log_text()


def test_udp_check_needs_no_descriptor_per_target(kamailio_factory):
    """1,200 UDP targets where nothing listens, under a 1,024 descriptor
    limit: every one is down by the transport check (ICMP port unreachable,
    long before oos_timeout), without a single ERROR line.  With a socket
    per target the check ran out of descriptors (EMFILE) and logged."""
    n = 1200
    targets = [("target", "sip:%s:9" % member_address(i, 252))
               for i in range(n)]
    cfg = make_cfg([("oos_check", 1), ("oos_force", 1),
                    ("oos_timeout", 900)] + targets)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(1024, hard), hard))
    try:
        k = kamailio_factory(cfg_text=cfg)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    pid = k.proc.pid
    limit = open("/proc/%d/limits" % pid).read()
    assert re.search(r"Max open files\s+1024\b", limit), limit
    deadline = time.monotonic() + 15
    rx = re.compile(r"target (sip:\S+) state unknown -> down \((.*)\)")
    while True:
        down = dict(rx.findall(k.log_text()))
        if len(down) == n:
            break
        assert time.monotonic() < deadline, "%d of %d down" % (len(down), n)
        time.sleep(0.2)
    assert set(down.values()) == {"transport error: ICMP port unreachable"}
    errors = [l for l in k.log_text().splitlines() if "ERROR" in l]
    assert errors == [], errors[:5]


def test_shared_memory_too_small_names_the_size(tmp_path):
    """6,000 targets (about 5 MB of table) in 4 MB of shared memory: the
    start fails with a line saying what ran out and what to raise."""
    targets = [("target", "sip:%s:9" % member_address(i, 253))
               for i in range(6000)]
    k = harness.Kamailio(tmp_path / "k", cfg_text=make_cfg(targets),
                         extra_args=["-m", "4"])
    with pytest.raises(harness.HarnessError):
        k.start(timeout=60)
    k.stop(check=False)
    log = k.log_text()
    assert re.search(r"ERROR: genesys_oos .*cannot register target \[sip:\S+\]: "
                     r"no shared memory to grow the genesys_oos target table "
                     r"beyond \d+ targets \(\d+ bytes each\): raise the shared "
                     r"memory size \(kamailio -m\)", log), log[-3000:]


def test_1000_targets_probed_on_schedule(kamailio_factory, many):
    """1,000 targets probed every second: over 10 s every target keeps its
    period (the scheduler takes targets in time order, at most 256 per
    wake-up, and never restarts at target 0), and no state changes after
    the first answers.  Before, 6-24 % of the intervals were more than 10 %
    off at this size."""
    n = 1000
    resp = many(period=1.0, tolerance=0.10)
    targets = [("target", resp.uri(member_address(i, 254))) for i in range(n)]
    cfg = make_cfg([("oos_check", 1), ("oos_force", 1),
                    ("oos_timeout", 1000)] + targets)
    k = kamailio_factory(cfg_text=cfg, extra_args=["-m", "128"])
    rx = re.compile(r"target (sip:\S+) state (\w+) -> (\w+)")
    deadline = time.monotonic() + 15
    while len(rx.findall(k.log_text())) < n:
        assert time.monotonic() < deadline, "not all targets answered"
        time.sleep(0.2)
    # settled: every target probed again on its period after its first answer
    resp.reset_stats()
    wait_until(lambda: len(resp.stats) == n, 3, "every target probed again")
    log0 = len(k.log_text())
    resp.reset_stats()
    time.sleep(10)      # what is tested: the intervals of 10 s of probing
    resp.recording = False
    stats = dict(resp.stats)
    assert len(stats) == n
    intervals = sum(s.intervals for s in stats.values())
    off = sum(s.off for s in stats.values())
    # ~9 intervals per target in 10 s
    assert intervals >= 8 * n, intervals
    # the goal is none; a shared test machine may stall a process briefly
    assert off <= intervals // 1000, (off, intervals)
    assert max(s.max_iv for s in stats.values()) < 1.5
    assert rx.findall(k.log_text()[log0:]) == []
