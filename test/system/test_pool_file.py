"""Pool file defences (issue 14 point 5), through the reference config:
a pool file that is not a regular file (a FIFO used to block the RPC process,
a directory gave "Document is empty") is refused at once with a clear error,
at start-up and on genesys_ha.reload; the first libxml2 error is the one
reported; a file over the size limit is refused; when genesys_oos cannot take
the members the error says why (the table is full, max_targets=N). The
running pool is unchanged after every refused reload."""

import os
import time

import pytest

import harness
import ha_util


@pytest.fixture
def members(peer_factory):
    return [peer_factory() for _ in range(4)]


def reload_fault(k):
    t0 = time.monotonic()
    r = k.rpc_raw("genesys_ha.reload", timeout=10)
    took = time.monotonic() - t0
    out = r.stdout.strip()
    assert out.startswith("error: 500 - 40003: the running pool is unchanged: "), out
    assert len(out) < 255, out
    return out, took


def test_reload_refuses_fifo_directory_big_and_bad_files(kamailio_factory,
                                                         tmp_path, members):
    path = tmp_path / "pool.xml"
    ha_util.write_pool(path, [("pair1", members[0].uri, members[1].uri, None)])
    k = ha_util.start_proxy(kamailio_factory, str(path))
    good = path.read_text()
    # the members' first probe answers first: "before" is compared below
    # with the pool after the refused reloads, not with probes still coming
    ha_util.wait_pool(k, lambda p: all(
        m["state"] == "active" for m in p["pair1"]["members"].values()),
        what="both members active")
    before = ha_util.pool(k)

    # a FIFO without a writer: refused at once, the RPC process is free
    path.unlink()
    os.mkfifo(path)
    out, took = reload_fault(k)
    assert "%s: cannot read the pool file: it is a FIFO, not a regular file" \
        % path in out, out
    assert took < 3, took
    assert k.rpc("core.uptime")
    k.wait_log(r"40003 SPR_ERROR_READING_CONFIG_DATA: .*it is a FIFO")

    # a directory
    path.unlink()
    path.mkdir()
    out, _ = reload_fault(k)
    assert "it is a directory, not a regular file" in out, out
    assert "Document is empty" not in out
    path.rmdir()

    # more than 64 MiB (GHA_XML_FILE_MAX: 100,000 elements fit below it)
    path.write_text(good.replace("</pool>", "<!--%s-->\n</pool>" % ("x" * (64 << 20))))
    out, _ = reload_fault(k)
    assert "more than the 67108864 a pool file may have" in out, out

    # not well-formed: the first error (the broken attribute on line 4), not
    # the last one ("Couldn't find end of Start Tag")
    lines = good.splitlines(keepends=True)
    n = next(i for i, ln in enumerate(lines) if "<sipserver" in ln)
    lines[n] = lines[n].replace('name="pair1"', 'name=pair1')
    path.write_text("".join(lines))
    out, _ = reload_fault(k)
    assert "%s:%d: not well-formed XML: AttValue: \" or ' expected" \
        % (path, n + 1) in out, out

    # the running pool never changed; a good file loads again
    assert ha_util.pool(k) == before
    path.write_text(good)
    assert "generation 2" in k.rpc_json("genesys_ha.reload")


def refuses_start(tmp_path, pool_path, cfg=None):
    k = harness.Kamailio(tmp_path / "k", cfg_text=cfg or ha_util.reference_cfg(),
                         defines={"POOL_FILE": '"%s"' % pool_path})
    t0 = time.monotonic()
    with pytest.raises(harness.HarnessError):
        k.start(timeout=10)
    took = time.monotonic() - t0
    k.stop(check=False)
    return k.log_text(), took


def test_startup_refuses_fifo(tmp_path):
    path = tmp_path / "pool.xml"
    os.mkfifo(path)
    log, took = refuses_start(tmp_path, path)
    assert "cannot read the pool file: it is a FIFO, not a regular file" in log, log[-2000:]
    assert took < 8, took


def test_goos_refusal_says_why(kamailio_factory, tmp_path, members):
    """genesys_oos with room for 2 targets: a pool of 2 pairs (4 members)
    does not start, and a reload to 2 pairs is refused, saying why"""
    path = tmp_path / "pool.xml"
    cfg = ha_util.reference_cfg(dict(ha_util.FAST_OOS, max_targets=2))
    ha_util.write_pool(path, [("pair1", members[0].uri, members[1].uri, None),
                              ("pair2", members[2].uri, members[3].uri, None)])
    log, _ = refuses_start(tmp_path, path, cfg)
    assert ("genesys_oos refused target %s (line" % members[2].uri) in log, log[-2000:]
    assert "refused: max_targets=2 reached (2 targets registered" in log, \
        log[-2000:]

    ha_util.write_pool(path, [("pair1", members[0].uri, members[1].uri, None)])
    k = ha_util.start_proxy(kamailio_factory, str(path), cfg_text=cfg)
    ha_util.write_pool(path, [("pair1", members[0].uri, members[1].uri, None),
                              ("pair2", members[2].uri, members[3].uri, None)])
    r = k.rpc_raw("genesys_ha.reload")
    out = r.stdout.strip()
    assert out.startswith("error: 500 - "), out
    assert "genesys_oos refused target %s" % members[2].uri in out, out
    assert "max_targets=2" in out, out
    k.wait_log(r"refused: max_targets=2 reached \(2 targets registered")
    assert "pair2" not in ha_util.pool(k)
