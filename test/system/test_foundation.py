"""Foundation: the reference config with all three modules proxies a call, and
the harness itself fails loudly when kamailio cannot start."""

import re
import shutil

import pytest

import harness


def test_reference_config_is_valid(tmp_path):
    k = harness.Kamailio(tmp_path / "k")
    ok, out = k.check_config()
    assert ok, out
    assert "config file ok" in out


def test_all_modules_loaded(kamailio):
    mods = kamailio.rpc("core.modules")
    for m in ("genesys_oos", "genesys_ha", "genesys_tlssticky"):
        assert m in mods, mods


def test_build_tree_modules_are_the_ones_loaded(tmp_path, kamailio_factory):
    """An installed kamailio-genesys-modules package puts modules of the same
    names into Kamailio's module directory; the harness must still load the
    build tree's.  A copy of each module in a "package" directory placed as
    an installed package would be shows which file each -L order picks."""
    shadow = tmp_path / "installed"
    shadow.mkdir()
    names = ("genesys_oos", "genesys_ha", "genesys_tlssticky")
    for m in names:
        shutil.copy(harness.MODULES_DIR / m / (m + ".so"), shadow / (m + ".so"))

    k = kamailio_factory()
    k_maps = k.mapped_modules()
    for m in names:
        assert k_maps[m] == str(harness.MODULES_DIR / m / (m + ".so")), k_maps

    # the harness's order with the "package" between the build tree and
    # the stock modules: still the build tree
    k2 = harness.Kamailio(tmp_path / "k2")
    k2.module_path = "%s:%s:%s" % (harness.MODULES_DIR, shadow, harness.STOCK_MODULES)
    k2.start()
    try:
        maps = k2.mapped_modules()
        for m in names:
            assert maps[m].startswith(str(harness.MODULES_DIR)), maps
    finally:
        k2.stop()

    # and the check discriminates: the package first is what gets loaded
    k3 = harness.Kamailio(tmp_path / "k3")
    k3.module_path = "%s:%s:%s" % (shadow, harness.MODULES_DIR, harness.STOCK_MODULES)
    k3.start()
    try:
        maps = k3.mapped_modules()
        for m in names:
            assert maps[m] == str(shadow / (m + ".so")), maps
    finally:
        k3.stop()


def test_call_through_proxy(kamailio, sipp_factory):
    """INVITE/200/ACK/BYE/200 from a SIPp UAC through kamailio to a SIPp UAS."""
    uas = sipp_factory("uas_call.xml", "uas").start()
    uac = sipp_factory("uac_call.xml", "uac", remote=kamailio.address + ":5060",
                       extra_args=["-key", "callee", "%s:%d" % (uas.address, uas.port)])
    res_uac = uac.run()
    res_uas = uas.wait()
    assert res_uac.rc == 0 and res_uac.successful == 1, res_uac.screen
    assert res_uas.rc == 0 and res_uas.successful == 1, res_uas.screen

    # the UAS saw the INVITE, ACK and BYE, each relayed by the proxy
    for method in ("INVITE", "ACK", "BYE"):
        got = res_uas.received(method + " ")
        assert len(got) == 1, (method, res_uas.messages)
        top_via = re.search(r"^Via: SIP/2.0/UDP ([^;\s]+)", got[0]["text"], re.M)
        assert top_via and top_via.group(1).startswith(kamailio.address), got[0]["text"]
    # the proxy record-routed the dialog, so the BYE went through it
    invite = res_uas.received("INVITE ")[0]["text"]
    assert re.search(r"^Record-Route: <sip:%s[:;>]" % re.escape(kamailio.address),
                     invite, re.M), invite
    # the UAC got the 200 for the INVITE from the proxy, with the UAS's to-tag
    ok = res_uac.received("SIP/2.0 200")
    assert len(ok) == 2, res_uac.messages    # 200 INVITE and 200 BYE


def test_broken_module_path_fails_the_harness(tmp_path):
    """The harness must not hide a kamailio that cannot load a module."""
    cfg = harness.REFERENCE_CFG.read_text().replace(
        'loadmodule "genesys_ha"', 'loadmodule "genesys_no_such_module"')
    k = harness.Kamailio(tmp_path / "k", cfg_text=cfg)
    with pytest.raises(harness.HarnessError) as e:
        k.start()
    assert "genesys_no_such_module" in str(e.value)
    k.stop(check=False)


def test_harness_log_checks(tmp_path):
    """Crash lines fail a test; only tcp_main's known EOF noise after the
    harness asked kamailio to stop is ignored."""
    k = harness.Kamailio(tmp_path / "k")
    before = " 3(11) CRITICAL: <core> [core/pass_fd.c:277]: receive_fd(): EOF on 13\n"
    k.log.write_text(before)
    assert k.failures(), "CRITICAL while running must fail the test"
    k._stop_offset = len(before)
    k.log.write_text(before
                     + " 3(11) CRITICAL: <core> [core/pass_fd.c:277]: receive_fd(): EOF on 14\n")
    assert len(k.failures()) == 1, k.failures()
    k.log.write_text(before + " 4(12) CRITICAL: <core> [core/tcp_main.c:1]: other\n"
                     + " 0(1) ALERT: <core> [main.c:770]: handle_sigs(): child process 5 exited by a signal 11\n")
    assert len(k.failures()) == 3, k.failures()
