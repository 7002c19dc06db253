#!/usr/bin/env bash
# Install everything the build, the tests and the demo need, from Debian 12's
# archive, and fetch the source of the *installed* Kamailio into a git-ignored
# cache (.cache/kamailio-src) configured like Debian's debian/rules.
#
# Idempotent: a second run only checks and returns in seconds.
# Usage: scripts/deps.sh            (needs root, or sudo)
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
cache="$top/.cache"
src_link="$cache/kamailio-src"

PKGS=(kamailio kamailio-tls-modules sip-tester socat sipsak
      libssl-dev libxml2-dev libxml2-utils libcmocka-dev python3-pytest
      build-essential bison flex dpkg-dev pkg-config openssl iproute2 procps
      fakeroot debhelper valgrind clang libclang-rt-14-dev
      xsltproc docbook-xsl lintian curl)

die() { echo "deps: $*" >&2; exit 1; }
say() { echo "deps: $*"; }

# --- prerequisites --------------------------------------------------------
[ -r /etc/debian_version ] || die "this is not Debian; kamailio-genesys needs Debian 12 (bookworm)."
case "$(cut -d. -f1 /etc/debian_version)" in
	12) ;;
	*) die "Debian $(cat /etc/debian_version) found; kamailio-genesys needs Debian 12 (bookworm)." ;;
esac

SUDO=""
if [ "$(id -u)" -ne 0 ]; then
	if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
		SUDO="sudo"
	else
		die "run as root, or give this user password-less sudo (installing Debian packages needs it)."
	fi
fi

missing_pkgs() {
	local p
	for p in "${PKGS[@]}"; do
		dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' \
			|| echo "$p"
	done
}

have_deb_src() {
	grep -Eqs '^[[:space:]]*deb-src[[:space:]]' /etc/apt/sources.list /etc/apt/sources.list.d/*.list \
		|| grep -Eqs '^Types:.*deb-src' /etc/apt/sources.list.d/*.sources
}

add_deb_src() {
	local f out=/etc/apt/sources.list.d/kamailio-genesys-deb-src
	say "no deb-src entry found: adding one next to the existing deb entries"
	if ls /etc/apt/sources.list.d/*.sources >/dev/null 2>&1; then
		# deb822: copy every stanza of the enabled .sources files as deb-src
		for f in /etc/apt/sources.list.d/*.sources; do
			sed -e 's/^Types:.*/Types: deb-src/' "$f"
			echo
		done | $SUDO tee "$out.sources" >/dev/null
	fi
	if grep -Eqs '^[[:space:]]*deb[[:space:]]' /etc/apt/sources.list; then
		sed -n -e 's/^[[:space:]]*deb[[:space:]]/deb-src /p' /etc/apt/sources.list \
			| $SUDO tee "$out.list" >/dev/null
	fi
}

apt_updated=0
apt_update() {
	[ "$apt_updated" = 1 ] && return 0
	say "apt-get update"
	$SUDO apt-get update -qq || die "apt-get update failed: check the machine's Debian archive access."
	apt_updated=1
}

export DEBIAN_FRONTEND=noninteractive

# --- packages ---------------------------------------------------------------
miss=$(missing_pkgs | tr '\n' ' ')
if [ -n "${miss// /}" ]; then
	apt_update
	say "installing: $miss"
	# shellcheck disable=SC2086
	$SUDO apt-get install -y -qq --no-install-recommends $miss >/dev/null \
		|| die "apt-get install failed for: $miss"
fi
# Debian's kamailio package enables a systemd service on install; the
# project runs its own instances and must not compete for port 5060.
if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
	$SUDO systemctl disable --now kamailio >/dev/null 2>&1 || true
fi

# --- Kamailio source of the installed version -------------------------------
kver=$(dpkg-query -W -f='${Version}' kamailio)
[ -n "$kver" ] || die "kamailio is not installed after apt-get install."
upver=${kver#*:}; upver=${upver%-*}
stamp="$cache/kamailio-$kver.configured"

if [ -f "$stamp" ] && [ -f "$src_link/src/Makefile.modules" ]; then
	exit 0
fi

have_deb_src || { add_deb_src; apt_updated=0; }
apt_update
mkdir -p "$cache/src-$kver"
say "fetching the source of kamailio $kver"
( cd "$cache/src-$kver" && apt-get source -qq --download-only "kamailio=$kver" 2>&1 >/dev/null | grep -v "unsandboxed" >&2 || true; ls kamailio_*.dsc >/dev/null 2>&1 ) \
	|| die "apt-get source kamailio=$kver failed: the archive has no source for the installed version."
dsc=$(ls "$cache/src-$kver"/kamailio_*.dsc | head -n1)
rm -rf "$cache/src-$kver/tree"
dpkg-source --no-check -x "$dsc" "$cache/src-$kver/tree" >/dev/null \
	|| die "could not unpack $dsc"
ln -sfn "src-$kver/tree" "$src_link"

# make cfg with the settings of Debian's debian/rules
say "configuring the kamailio source tree (make cfg)"
cflags="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CFLAGS) -DVERSION_NODATE"
ldflags="$(dpkg-buildflags --get LDFLAGS)"
( cd "$src_link" && make cfg prefix=/usr cfg_prefix= cfg_target=/etc/kamailio/ \
	BASEDIR= FLAVOUR=kamailio group_include=kstandard \
	CC_EXTRA_OPTS="$cflags" LD_EXTRA_OPTS="$ldflags" \
	run_prefix= run_target=/run/kamailio >"$cache/make-cfg.log" 2>&1 ) \
	|| die "make cfg failed in $src_link: see $cache/make-cfg.log"
touch "$stamp"
say "kamailio $kver source ready in $src_link"
