"""RPC faults are never lost (issue 14 point 4): ctl (kamcmd's binrpc) drops
a fault text of 255 characters or more entirely, so every fault of our RPC
commands is bounded and an echoed argument shows at most 64 characters and
"..."; extra arguments are refused with 400; genesys_oos.add of a target
already added over RPC changes nothing and says so (one remove releases it).
All through kamcmd against the reference config with a pool."""

import pytest

import harness
import ha_util

BIG = "x" * 10000


@pytest.fixture
def proxy(kamailio_factory, tmp_path):
    primary, backup = ha_util.Peer(), ha_util.Peer()
    for p in (primary, backup):
        p.start()
    pool = ha_util.write_pool(tmp_path / "pool.xml",
                              [("pair1", primary.uri, backup.uri, None)])
    k = ha_util.start_proxy(kamailio_factory, pool)
    ha_util.wait_pool(k, lambda p: p["pair1"]["state"] == "up", what="pair1 up")
    yield k, primary, backup
    for p in (primary, backup):
        p.stop()


def fault(k, *args):
    """kamcmd's output for a command that must fail: 'error: <code> - text'"""
    r = k.rpc_raw(*args)
    out = r.stdout.strip()
    assert out.startswith("error: "), (args[0], r.stdout, r.stderr)
    assert len(out) < 255, out
    return out


@pytest.mark.parametrize("args,code", [
    (("genesys_ha.switchover", BIG), 404),
    (("genesys_oos.set_state", BIG, "active"), 404),
    (("genesys_oos.set_state", "@MEMBER@", BIG), 400),
    (("genesys_oos.probe", BIG), 404),
    (("genesys_oos.add", BIG), 400),
    (("genesys_oos.remove", BIG), 404),
    (("genesys_oos.add", "sip:" + "h" * 300 + ":5060"), 400),
], ids=["switchover", "set_state-uri", "set_state-state", "probe", "add",
        "remove", "add-300"])
def test_long_argument_fault_reaches_kamcmd(proxy, args, code):
    k, primary, _ = proxy
    args = [a.replace("@MEMBER@", primary.uri) for a in args]
    out = fault(k, *args)
    assert out.startswith("error: %d - " % code), out
    long_arg = max(args[1:], key=len)
    # the argument's first 64 characters, then "..."
    assert long_arg[:64] + "..." in out, out
    assert long_arg[:65] not in out, out
    assert k.rpc("core.uptime")


@pytest.mark.parametrize("args", [
    ("genesys_ha.pool", "x"),
    ("genesys_ha.switchover", "pair1", "x"),
    ("genesys_ha.reload", "x"),
    ("genesys_oos.list", "x"),
    ("genesys_oos.set_state", "@MEMBER@", "down", "udp:@PROXY@:5060", "x"),
    ("genesys_oos.probe", "@MEMBER@", "udp:@PROXY@:5060", "x"),
    ("genesys_oos.add", "sip:127.0.0.9:5060", "udp:@PROXY@:5060", "x"),
    ("genesys_oos.remove", "@MEMBER@", "udp:@PROXY@:5060", "x"),
], ids=lambda a: a[0])
def test_extra_arguments_refused(proxy, args):
    """too many arguments: 400 and nothing done"""
    k, primary, _ = proxy
    args = [a.replace("@MEMBER@", primary.uri).replace("@PROXY@", k.address)
            for a in args]
    before = ha_util.pool(k)["pair1"]
    targets = k.rpc("genesys_oos.list")
    out = fault(k, *args)
    assert out.startswith("error: 400 - too many arguments (from 'x"), out
    assert "usage:" in out, out
    after = ha_util.pool(k)["pair1"]
    assert after["active"] == before["active"]
    assert after["switchovers"] == before["switchovers"]
    assert k.rpc("genesys_oos.list").count("uri:") == targets.count("uri:")
    assert "forced: no" in k.rpc("genesys_oos.list")


def test_add_twice_is_one_target(proxy):
    k = proxy[0]
    uri = "sip:%s:5060" % harness.next_address()
    first = k.rpc("genesys_oos.add", uri)
    assert "added: yes" in first, first
    second = k.rpc("genesys_oos.add", uri)
    assert "added: no (already added)" in second, second
    # the same slot
    assert first.split("uri:")[0] == second.split("uri:")[0]
    assert k.rpc("genesys_oos.list").count(uri) == 1
    # one remove releases it
    assert "released" in k.rpc("genesys_oos.remove", uri)
    assert uri not in k.rpc("genesys_oos.list")
    out = fault(k, "genesys_oos.remove", uri)
    assert out == "error: 404 - Unknown target: %s" % uri, out
