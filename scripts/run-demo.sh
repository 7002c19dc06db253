#!/usr/bin/env bash
# kamailio-genesys demo (make run): the reference kamailio.cfg on loopback in
# front of a primary/backup Genesys SIP Server pair simulated by SIPp, and a
# phone (SIPp) making calls.  The primary is killed, the backup is promoted
# (a real Genesys backup ignores SIP until then, so here it is not running
# until promoted), calls continue on the backup, including the BYEs of
# calls set up on the primary.  Exits within a minute; logs stay in $DEMO_DIR.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
KAMAILIO=${KAMAILIO:-/usr/sbin/kamailio}
KAMCMD=${KAMCMD:-/usr/sbin/kamcmd}
SIPP=${SIPP:-/usr/bin/sipp}
STOCK_MODULES=/usr/lib/x86_64-linux-gnu/kamailio/modules

# every simulated host has its own loopback address
PROXY=127.0.77.1
PRIMARY=127.0.77.11
BACKUP=127.0.77.12
PHONE=127.0.77.21

for b in "$KAMAILIO" "$KAMCMD" "$SIPP"; do
	[ -x "$b" ] || { echo "demo: $b not found: run 'make deps' first" >&2; exit 1; }
done
[ -f "$top/modules/genesys_ha/genesys_ha.so" ] || {
	echo "demo: modules not built: run 'make' first" >&2; exit 1; }

DEMO_DIR=$(mktemp -d /tmp/kamailio-genesys-demo.XXXXXX)
CTL="$DEMO_DIR/kamailio.ctl"
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	wait 2>/dev/null || true
}
trap cleanup EXIT

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
kc() { "$KAMCMD" -s "unix:$CTL" "$@"; }

# wait_for <seconds> <command...>: poll until the command succeeds
wait_for() {
	local t=$1; shift
	local end=$((SECONDS + t))
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt $end ] || return 1
		sleep 0.2
	done
}

sipp_server() { # name address
	"$SIPP" -sf "$top/test/sipp/ha_sipserver.xml" -i "$2" -p 5060 -m 1000000 \
		-nostdin -trace_msg -message_file "$DEMO_DIR/$1-messages.log" \
		>"$DEMO_DIR/$1.log" 2>&1 &
	pids+=($!)
	echo $! >"$DEMO_DIR/$1.pid"
}

count() { # method file
	grep -c "^$1 " "$2" 2>/dev/null || true
}

# ---- the pool file: one pair, as in etc/genesys-pool.xml -----------------
cat >"$DEMO_DIR/genesys-pool.xml" <<XML
<?xml version="1.0" encoding="UTF-8"?>
<pool version="1">
  <proxies>
    <proxy address="$PROXY:5060" site="demo"/>
  </proxies>
  <sipserver name="SIPS_Demo" site="demo">
    <primary uri="sip:$PRIMARY:5060"/>
    <backup uri="sip:$BACKUP:5060"/>
  </sipserver>
</pool>
XML

# ---- the reference config, with demo-speed probing (1 s) ------------------
sed -e 's/^modparam("genesys_oos", "oos_check", [0-9]*)/modparam("genesys_oos", "oos_check", 1)/' \
	-e 's/^modparam("genesys_oos", "oos_force", [0-9]*)/modparam("genesys_oos", "oos_force", 1)/' \
	-e 's/^modparam("genesys_oos", "oos_timeout", [0-9]*)/modparam("genesys_oos", "oos_timeout", 500)/' \
	"$top/etc/kamailio.cfg" >"$DEMO_DIR/kamailio.cfg"

say "SIP Servers: primary $PRIMARY (SIPp, running), backup $BACKUP (silent until promoted)"
sipp_server primary "$PRIMARY"

say "proxy: kamailio with genesys_oos + genesys_ha on $PROXY:5060 (log: $DEMO_DIR/kamailio.log)"
"$KAMAILIO" -f "$DEMO_DIR/kamailio.cfg" -L "$STOCK_MODULES:$top/modules" \
	-Y "$DEMO_DIR" -DD -E -m 64 -M 8 \
	-A "LISTEN_UDP=udp:$PROXY:5060" -A "LISTEN_TCP=tcp:$PROXY:5060" \
	-A "CTL_SOCK=\"unix:$CTL\"" -A CHILDREN=2 \
	-A "POOL_FILE=\"$DEMO_DIR/genesys-pool.xml\"" -A "OWN_ADDRESS=\"$PROXY:5060\"" \
	-A SIPS_FR_TIMER=1500 >"$DEMO_DIR/kamailio.log" 2>&1 &
kpid=$!
pids+=($kpid)
if ! wait_for 15 kc core.uptime; then
	echo "demo: kamailio did not start:" >&2
	tail -20 "$DEMO_DIR/kamailio.log" >&2
	exit 1
fi
grep -h "40004" "$DEMO_DIR/kamailio.log" | sed 's/^.*: 40004/40004/' || true
pool_has() { kc genesys_ha.pool | tr -d '\t' | grep -q "$1"; }
wait_for 10 pool_has "active_uri: sip:$PRIMARY:5060" || true
wait_for 10 pool_has "state: up" || true

say "kamcmd genesys_ha.pool"
kc genesys_ha.pool

say "a phone ($PHONE) calls through the proxy: 2 calls/s, each 3 s long, 30 calls"
"$SIPP" -sf "$top/test/sipp/ha_phone_call.xml" -i "$PHONE" -p 5060 -s 2000 \
	-r 2 -m 30 -d 3000 -nostdin -trace_stat -stf "$DEMO_DIR/phone-stats.csv" \
	-trace_err -error_file "$DEMO_DIR/phone-errors.log" \
	"$PROXY:5060" >"$DEMO_DIR/phone.log" 2>&1 &
phone=$!
pids+=($phone)
sleep 5

say "the primary SIP Server dies (kill -9); the backup is promoted"
kill -9 "$(cat "$DEMO_DIR/primary.pid")" 2>/dev/null || true
sipp_server backup "$BACKUP"
if wait_for 10 pool_has "active_uri: sip:$BACKUP:5060"; then
	grep -h "switchover from primary" "$DEMO_DIR/kamailio.log" | sed 's/^.*: SIP Server pair/SIP Server pair/' | tail -1
else
	echo "demo: the pool did not switch to the backup" >&2
fi

say "kamcmd genesys_ha.pool (after the switchover)"
kc genesys_ha.pool

say "calls continue on the backup (waiting for the phone to finish)"
rc=0
wait "$phone" || rc=$?
col() { # name -> value in the last stats row
	awk -F';' -v n="$1" 'NR==1{for(i=1;i<=NF;i++) if($i==n) c=i; next} {v=$c} END{print v}' \
		"$DEMO_DIR/phone-stats.csv"
}
succ=$(col "SuccessfulCall(C)")
fail=$(col "FailedCall(C)")
pinv=$(count INVITE "$DEMO_DIR/primary-messages.log")
binv=$(count INVITE "$DEMO_DIR/backup-messages.log")
bbye=$(count BYE "$DEMO_DIR/backup-messages.log")
bbye_old=$(grep -c "^BYE sip:sips@$PRIMARY" "$DEMO_DIR/backup-messages.log" || true)
echo "phone: $succ calls succeeded, $fail failed (sipp exit code $rc)"
echo "primary received $pinv INVITEs before it died; the backup received $binv INVITEs"
echo "the backup received $bbye BYEs, $bbye_old of them for calls set up on the primary"
echo "  (their Request-URI still names the primary: the Record-Route took them to the backup)"

say "statistics: kamcmd stats.get_statistics genesys_ha:"
kc stats.get_statistics genesys_ha: || true

say "done; logs in $DEMO_DIR"
