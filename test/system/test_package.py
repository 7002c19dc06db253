"""The .deb: built from a copy of the tree, it carries the three modules,
depends on the exact Kamailio upstream version, and its modules load."""

import os
import re
import shutil
import subprocess

import harness


def build_deb(tmp_path):
    """'make deb' in a copy of the tree at tmp_path/src (the Kamailio source
    linked, no build products copied): (src, the finished make run)"""
    src = tmp_path / "src"
    shutil.copytree(harness.TOP, src, symlinks=True,
                    ignore=shutil.ignore_patterns(".cache", "build", ".git", "bin",
                                                  "*.o", "*.so", "*.d", "__pycache__"))
    os.symlink(os.path.realpath(harness.TOP / ".cache"), src / ".cache")
    p = subprocess.run(["make", "deb"], cwd=src, capture_output=True, text=True,
                       timeout=600)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return src, p


def test_deb_builds_and_its_modules_load(tmp_path):
    src, p = build_deb(tmp_path)
    debs = list((src / "build").glob("kamailio-genesys-modules_*.deb"))
    assert len(debs) == 1, p.stdout
    # nothing written beside the source tree (dpkg-buildpackage's habit)
    assert sorted(os.listdir(tmp_path)) == ["src"], os.listdir(tmp_path)

    # lintian: no error, no warning (informational tags are allowed)
    lint = subprocess.run(["lintian", "--allow-root", str(debs[0])],
                          capture_output=True, text=True, timeout=300)
    bad = [l for l in lint.stdout.splitlines() if re.match(r"[EW]: ", l)]
    assert not bad, lint.stdout

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
        so = moddir / (m + ".so")
        assert so.is_file(), m
        # hardening: full RELRO (bindnow) like Debian's own modules
        dyn = subprocess.run(["readelf", "-d", str(so)], capture_output=True,
                             text=True, check=True).stdout
        assert "BIND_NOW" in dyn, dyn
        # no path of the machine that built it
        data = so.read_bytes()
        assert str(src).encode() not in data and b"/.cache/" not in data, m
        # the docbook as installed: uncompressed (its parts include each
        # other by name), it renders, and the rendered page is shipped
        doc = root / "usr/share/doc/kamailio-genesys-modules/modules" / m
        x = subprocess.run(["xmllint", "--xinclude", "--nonet", "--noout",
                            str(doc / (m + ".xml"))], capture_output=True, text=True)
        assert x.returncode == 0 and not x.stderr, x.stderr
        html = (doc / (m + ".html")).read_text(errors="replace")
        assert "<html" in html and "modparam" in html, m
    assert (root / "etc/kamailio/genesys/kamailio.cfg").is_file()
    # shm sized for the reference config's 10,000 phones (docs/tls.md)
    assert re.search(r"^SHM_MEMORY=1024$", (
        root / "etc/default/kamailio.d/genesys").read_text(), re.M)
    # the service: unit (not enabled), settings, run and check commands
    assert (root / "lib/systemd/system/kamailio-genesys.service").is_file()
    assert (root / "etc/default/kamailio-genesys").is_file()
    for c in ("kamailio-genesys-check", "kamailio-genesys-run"):
        assert os.access(root / "usr/sbin" / c, os.X_OK), c
        assert (root / "usr/share/man/man8" / (c + ".8.gz")).is_file(), c

    # the packaged modules (not the build tree's) load into Debian's kamailio
    k = harness.Kamailio(tmp_path / "k")
    k.module_path = "%s:%s" % (moddir, harness.STOCK_MODULES)
    ok, out = k.check_config()
    assert ok, out
    # ... and a running kamailio has mapped exactly the packaged files
    k.start()
    try:
        maps = k.mapped_modules()
        for m in ("genesys_oos", "genesys_ha", "genesys_tlssticky"):
            assert maps[m] == str(moddir / (m + ".so")), maps
    finally:
        k.stop()
