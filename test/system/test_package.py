"""The .deb: built from a copy of the tree, it carries the three modules,
depends on the exact Kamailio upstream version, and its modules load."""

import os
import re
import shutil
import subprocess

import harness


def test_deb_builds_and_its_modules_load(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(harness.TOP, src, symlinks=True,
                    ignore=shutil.ignore_patterns(".cache", "build", ".git", "bin",
                                                  "*.o", "*.so", "*.d", "__pycache__"))
    os.symlink(os.path.realpath(harness.TOP / ".cache"), src / ".cache")
    p = subprocess.run(["make", "deb"], cwd=src, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    debs = list((src / "build").glob("kamailio-genesys-modules_*.deb"))
    assert len(debs) == 1, p.stdout

    info = subprocess.run(["dpkg-deb", "-f", str(debs[0]), "Depends"],
                          capture_output=True, text=True, check=True).stdout
    kver = subprocess.run(["dpkg-query", "-W", "-f=${Version}", "kamailio"],
                          capture_output=True, text=True, check=True).stdout
    upstream = re.sub(r"-[^-]*$", "", kver.split(":")[-1])
    assert "kamailio (>= %s)" % upstream in info, info
    assert "kamailio (<< %s+~)" % upstream in info, info

    root = tmp_path / "root"
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(root)], check=True)
    moddir = root / "usr/lib/x86_64-linux-gnu/kamailio/modules"
    for m in ("genesys_oos", "genesys_ha", "genesys_tlssticky"):
        assert (moddir / (m + ".so")).is_file(), m
    assert (root / "etc/kamailio/genesys/kamailio.cfg").is_file()
    # shm sized for the reference config's 10,000 phones (docs/tls.md)
    assert re.search(r"^SHM_MEMORY=1024$", (
        root / "etc/default/kamailio.d/genesys").read_text(), re.M)

    # the packaged modules (not the build tree's) load into Debian's kamailio
    k = harness.Kamailio(tmp_path / "k")
    argv = k.argv(check_only=True)
    argv[argv.index("-L") + 1] = "%s:%s" % (harness.STOCK_MODULES, moddir)
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
