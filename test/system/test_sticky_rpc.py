"""genesys_tlssticky RPC faults follow the convention of genesys_ha and
genesys_oos (issue 15 point 3): bounded faults (an echoed argument shows at
most 64 characters and "...", the whole fault under the 255 characters
kamcmd's binrpc can carry), 400 for bad input, extra arguments refused with
400 and a usage line, nothing changed by a refused command.  Through kamcmd
against a proxy holding one phone's binding."""

import pytest

import harness
import sticky_env as env
from test_sticky import certs, sipserver, phones, register  # noqa: F401 (fixtures)

BIG = "x" * 10000


@pytest.fixture
def proxy(kamailio_factory, tmp_path, certs, sipserver, phones):
    k = env.start_proxy(kamailio_factory, tmp_path, certs, sipserver)
    phone = phones(harness.next_address(), k.address, 5061)
    register(phone, k, sipserver)
    (b,) = env.bindings(k)
    return k, b["aor"]


def fault(k, *args):
    """kamcmd's output for a command that must fail: 'error: <code> - text'"""
    r = k.rpc_raw(*args)
    out = r.stdout.strip()
    assert out.startswith("error: "), (args, r.stdout, r.stderr)
    assert len(out) < 255, out
    return out


@pytest.mark.parametrize("args", [
    ("genesys_tlssticky.list", "@AOR@", "x"),
    ("genesys_tlssticky.list", "@AOR@", BIG),
    ("genesys_tlssticky.stats", "x"),
], ids=["list", "list-long-extra", "stats"])
def test_extra_arguments_refused(proxy, args):
    k, aor = proxy
    args = [a.replace("@AOR@", aor) for a in args]
    before = env.stats(k)
    out = fault(k, *args)
    assert out.startswith("error: 400 - too many arguments (from '"), out
    assert "usage: %s" % args[0] in out, out
    assert args[-1][:65] not in out or len(args[-1]) <= 64, out
    # nothing done, and the commands still work
    assert env.stats(k) == before
    assert [b["aor"] for b in env.bindings(k, aor)] == [aor]


def test_long_aor_fault_is_bounded(proxy):
    k, _ = proxy
    out = fault(k, "genesys_tlssticky.list", BIG)
    assert out.startswith("error: 400 - AOR too long: '"), out
    # the argument's first 64 characters, then "..."
    assert BIG[:64] + "...'" in out, out
    assert BIG[:65] not in out, out
    assert "(10000 characters, at most 256)" in out, out
    assert k.rpc("core.uptime")


def test_bad_aor_fault_echoes_it(proxy):
    k, _ = proxy
    out = fault(k, "genesys_tlssticky.list", "1001@")
    assert out == "error: 400 - bad AOR '1001@': expected user@host", out


def test_unknown_aor_lists_nothing(proxy):
    """a filter naming no binding is an empty list, not a fault"""
    k, aor = proxy
    assert env.bindings(k, "nobody@" + aor.split("@")[1]) == []
    assert [b["aor"] for b in env.bindings(k)] == [aor]
