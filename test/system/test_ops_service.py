"""Checking before a restart and running as a service (issue 13):
kamailio-genesys-check reports what 'kamailio -c' lets through, with file,
line and element; the systemd unit parses; kamailio-genesys-run passes the
settings' defines the way the reference config needs them."""

import os
import shutil
import subprocess

import pytest

import harness
import ha_util as hu

CHECK = harness.TOP / "scripts" / "kamailio-genesys-check"
RUN = harness.TOP / "scripts" / "kamailio-genesys-run"
UNIT = harness.TOP / "debian" / "kamailio-genesys-modules.kamailio-genesys.service"
MPATH = "%s:%s" % (harness.MODULES_DIR, harness.STOCK_MODULES)


@pytest.fixture
def peer(peer_factory):
    return peer_factory()


def check(*args):
    p = subprocess.run([str(CHECK), "-L", MPATH, "-f", str(harness.REFERENCE_CFG),
                        "-t", "20"] + list(args),
                       capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def pool(tmp_path, text):
    f = tmp_path / "pool.xml"
    f.write_text(text)
    return '"%s"' % f


GOOD = """<?xml version="1.0"?>
<pool version="1">
  <proxies><proxy address="10.9.9.9:5060"/></proxies>
  <sipserver name="SIPS_A">
    <primary uri="%s"/>
    <backup uri="sip:127.0.0.250:5060"/>
  </sipserver>
</pool>
"""


def kamailio_c_accepts(tmp_path, defines):
    k = harness.Kamailio(tmp_path / "c", defines=defines)
    ok, out = k.check_config()
    return ok


@pytest.mark.parametrize("case", ["bad-pool", "own-address", "serving", "range", "lb"])
def test_check_reports_what_kamailio_c_lets_through(tmp_path, peer, case):
    defines = {"POOL_FILE": pool(tmp_path, GOOD % peer.uri)}
    want = None
    if case == "bad-pool":
        defines["POOL_FILE"] = pool(tmp_path, (GOOD % peer.uri).replace(
            '    <backup uri="sip:127.0.0.250:5060"/>\n', ""))
        want = "40003 SPR_ERROR_READING_CONFIG_DATA: %s:4: element <sipserver>" \
            % defines["POOL_FILE"].strip('"')
    elif case == "own-address":
        defines["OWN_ADDRESS"] = '"10.1.1.1:5060"'
        want = "40000 SPR_OWN_PROXY_ADDR_NOT_FOUND"
    elif case == "serving":
        defines["SERVING_SIPSERVER"] = '"SIPS_NONE"'
        want = "SIPS_NONE"
    elif case == "range":
        defines["SIPS_FR_TIMER"] = "4000"
        defines["REGISTRAR_DEFAULT_TIMEOUT"] = "-5"
        want = "registrar_default_timeout"
    elif case == "lb":
        defines["LB_ALGORITHM"] = '"weighted"'
        want = "lb_algorithm 'weighted' is invalid"
    # what 'kamailio -c' says: fine
    assert kamailio_c_accepts(tmp_path, defines)
    args = []
    for k, v in defines.items():
        args += ["-A", "%s=%s" % (k, v)]
    rc, out = check(*args)
    assert rc == 1, out
    assert "does NOT start" in out and want in out, out


def test_check_passes_a_good_configuration_next_to_the_running_proxy(
        tmp_path, peer, kamailio_factory):
    """A good configuration passes, also while the proxy it checks runs
    (same listener defines: the check uses its own) and read from a
    settings file as the service does."""
    pool_def = pool(tmp_path, GOOD % peer.uri)
    k = kamailio_factory(cfg_text=hu.reference_cfg(), defines={"POOL_FILE": pool_def})
    defaults = tmp_path / "defaults"
    defaults.write_text("CFGFILE=%s\nDEFINES=(\n\t'LISTEN_UDP=%s'\n\t'LISTEN_TCP=%s'\n"
                        "\t'POOL_FILE=%s'\n)\n" % (harness.REFERENCE_CFG,
                                                   k.defines["LISTEN_UDP"],
                                                   k.defines["LISTEN_TCP"], pool_def))
    rc, out = check("-d", str(defaults))
    assert rc == 0, out
    assert "starts" in out, out
    # the running proxy did not notice
    assert k.proc.poll() is None
    k.rpc("core.uptime")


def test_run_passes_the_settings_defines(tmp_path):
    defaults = tmp_path / "defaults"
    defaults.write_text("CFGFILE=/x/kamailio.cfg\nSHM_MEMORY=128\nRESOLVE_HOST=false\n"
                        "DEFINES=(\n\t'POOL_FILE=\"/etc/kamailio/genesys/pool.xml\"'\n"
                        "\t'WITH_TLS'\n)\n")
    out = subprocess.run([str(RUN), "-d", str(defaults), "-n"], capture_output=True,
                         text=True, check=True).stdout
    argv = subprocess.run(["bash", "-c", 'eval "a=($1)"; printf "%s\\n" "${a[@]}"',
                           "_", out], capture_output=True, text=True,
                          check=True).stdout.splitlines()
    assert argv[:8] == ["/usr/sbin/kamailio", "-DD", "-f", "/x/kamailio.cfg",
                        "-m", "128", "-M", "8"], argv
    assert 'POOL_FILE="/etc/kamailio/genesys/pool.xml"' in argv
    assert "WITH_TLS" in argv
    # resolve-host = false (the Genesys default): the host name in Via
    via = [a for a in argv if a.startswith("VIA_HOST=")]
    assert len(via) == 1 and via[0].startswith('VIA_HOST="') and len(via[0]) > 12, argv
    defaults.write_text("RESOLVE_HOST=true\n")
    out = subprocess.run([str(RUN), "-d", str(defaults), "-n"], capture_output=True,
                         text=True, check=True).stdout
    assert "VIA_HOST" not in out
    assert " -x " not in out        # Kamailio's default allocator
    # the shared memory allocator
    defaults.write_text("SHM_MANAGER=tlsf\n")
    out = subprocess.run([str(RUN), "-d", str(defaults), "-n"], capture_output=True,
                         text=True, check=True).stdout
    assert " -x tlsf " in out, out
    defaults.write_text("SHM_MANAGER=fast\n")
    r = subprocess.run([str(RUN), "-d", str(defaults), "-n"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and "SHM_MANAGER=fast" in r.stderr \
        and "use qm, fm or tlsf" in r.stderr, (r.returncode, r.stderr)


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="no systemd-analyze")
def test_service_unit_parses(tmp_path):
    """systemd-analyze verify: the unit as packaged, its commands pointed at
    the build tree's scripts when the package is not installed."""
    text = UNIT.read_text()
    assert "ExecStartPre=/usr/sbin/kamailio-genesys-check" in text
    if not os.path.exists("/usr/sbin/kamailio-genesys-check"):
        text = text.replace("/usr/sbin/kamailio-genesys-check", str(CHECK)) \
                   .replace("/usr/sbin/kamailio-genesys-run", str(RUN))
    unit = tmp_path / "kamailio-genesys.service"
    unit.write_text(text)
    p = subprocess.run(["systemd-analyze", "verify", str(unit)],
                       capture_output=True, text=True, timeout=60)
    msgs = [l for l in (p.stdout + p.stderr).splitlines()
            if "kamailio-genesys" in l]
    assert p.returncode == 0 and not msgs, p.stdout + p.stderr


def test_reference_config_on_tlsf_carries_calls(tmp_path, kamailio_factory,
                                                sipp_factory):
    """SHM_MANAGER=tlsf (kamailio -x tlsf, the allocator that keeps shm flat
    under load): the reference config with our modules starts, probes both
    members and relays calls; every process runs with -x tlsf."""
    pri = hu.sipserver(sipp_factory, tmp_path, "primary").start()
    bak = hu.sipserver(sipp_factory, tmp_path, "backup").start()
    path = hu.write_pool(tmp_path / "pool.xml",
                         [("SIPS_A", pri.uri, bak.uri, None)])
    k = hu.start_proxy(kamailio_factory, path, mem_debug=False,
                       extra_args=["-x", "tlsf"])
    hu.wait_pool(k, lambda p: all(m["state"] == "active" for m in
                                  p["SIPS_A"]["members"].values()),
                 what="both members active")
    r = hu.phone(sipp_factory, k, "calls", calls=20, rate=20).run()
    assert r.rc == 0 and r.successful == 20, r.screen
    for pid, _ in k.processes():
        argv = open("/proc/%d/cmdline" % pid, "rb").read().split(b"\0")
        assert b"-x" in argv and argv[argv.index(b"-x") + 1] == b"tlsf", argv
