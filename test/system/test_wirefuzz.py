"""A short run of the wire mutation fuzzer (test/wirefuzz/wirefuzz.py):
1,500 mutated SIP messages from the ;gha= Route, flow token, REGISTER,
member and MWI seeds over UDP and TCP through the reference config with a
pool; every 250 messages all kamailio processes must live, the RPC answer and
a canary OPTIONS get 200 over UDP and TCP; no crash, BUG or memory error in
the log.  `make wirefuzz` runs the long one (20,000 messages)."""

import sys

import harness

sys.path.insert(0, str(harness.TOP / "test" / "wirefuzz"))
import wirefuzz  # noqa: E402


def test_wirefuzz_short(tmp_path):
    f = wirefuzz.run(1500, 4475, tmp_path / "wirefuzz",
                     save_failing=tmp_path / "failing")
    assert f["sent"] == 1500 and f["checks"] == 6
    assert set(f["by_transport"]) == {"udp", "tcp"}
    assert set(f["by_kind"]) == {k for k, _, _ in wirefuzz.SEEDS}
    # the fuzzed traffic really went through: replies came back and requests
    # reached the SIP Servers
    assert sum(f["replies"].values()) > 100, f["replies"]
    assert f["reached_sip_servers"] > 100, f
