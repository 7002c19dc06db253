"""docs/first-hour.md, followed literally: its sh blocks run in one bash,
as root, in the directory of a .deb built by 'make deb' from this tree; the
first block's example addresses are replaced by loopback ones where SIPp
SIP Servers answer.  The package is installed on this machine (and purged
afterwards when it was not installed before)."""

import os
import re
import subprocess

import pytest

import harness
import ha_util as hu
from test_package import build_deb

PAGE = harness.TOP / "docs" / "first-hour.md"
PKG = "kamailio-genesys-modules"


def sh_blocks(text):
    """The ```sh blocks (not ```sh systemd) of the page, in order."""
    return re.findall(r"^```sh\n(.*?)^```", text, re.S | re.M)


def installed():
    p = subprocess.run(["dpkg-query", "-W", "-f=${Status}", PKG],
                       capture_output=True, text=True)
    return p.stdout.strip() == "install ok installed"


@pytest.mark.skipif(os.geteuid() != 0, reason="installs a package: needs root")
def test_first_hour_page(tmp_path, sipp_factory):
    # the .deb, as the page expects it: built by 'make deb'
    src, _ = build_deb(tmp_path)
    debdir = src / "build"
    assert len(list(debdir.glob(PKG + "_*_amd64.deb"))) == 1

    blocks = sh_blocks(PAGE.read_text())
    assert len(blocks) >= 9, blocks
    addr = {k: harness.next_address() for k in ("PROXY", "PRIMARY", "BACKUP", "CALLER")}
    first = blocks[0]
    for k, v in addr.items():
        first, n = re.subn(r"^%s=192\.0\.2\.\d+" % k, "%s=%s" % (k, v), first, flags=re.M)
        assert n == 1, (k, blocks[0])
    # the harness's own line: a failing step must not leave the proxy the
    # page started running
    script = ("set -e -x\n"
              "trap 'kill ${KPID:-} 2>/dev/null || true; wait || true' EXIT\n"
              + first + "".join(blocks[1:]))
    assert "systemctl" not in script

    # the SIP Servers
    pri = hu.sipserver(sipp_factory, tmp_path, "primary", address=addr["PRIMARY"]).start()
    bak = hu.sipserver(sipp_factory, tmp_path, "backup", address=addr["BACKUP"]).start()

    was_installed = installed()
    ctl = "/run/kamailio/kamailio_ctl"
    assert not os.path.exists(ctl), "a kamailio already uses %s" % ctl
    try:
        r = subprocess.run(["bash", "-c", script], cwd=str(debdir),
                           capture_output=True, text=True, timeout=240)
        out = r.stdout + r.stderr
        assert r.returncode == 0, out[-2500:]
        assert "starts" in out                       # kamailio-genesys-check
        assert "active member is now the backup" in out, out[-3000:]
        assert installed()
    finally:
        if not was_installed and installed():
            subprocess.run(["apt-get", "purge", "-y", "-qq", PKG],
                           capture_output=True, text=True, timeout=120)
        if os.path.exists("/etc/kamailio/genesys/pool.xml"):
            os.unlink("/etc/kamailio/genesys/pool.xml")
            try:
                os.rmdir("/etc/kamailio/genesys")
            except OSError:
                pass
    # the first call reached the primary, the second the backup
    pri.kill()
    bak.kill()
    rp, rb = pri.result(None), bak.result(None)
    assert len(rp.received("INVITE ")) == 1, [m["text"][:60] for m in rp.messages]
    assert len(rb.received("INVITE ")) == 1, [m["text"][:60] for m in rb.messages]
    assert len(rb.received("BYE ")) == 1
