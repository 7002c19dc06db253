#!/usr/bin/env bash
# Start kamailio with the reference etc/kamailio.cfg and the modules of this
# build tree, on loopback, in the foreground.  Ctrl-C stops it.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
run="$top/.cache/run"
mkdir -p "$run"
addr=${DEMO_ADDR:-127.0.0.1}
port=${DEMO_PORT:-5060}
ctl="$run/kamailio_ctl"

echo "kamailio-genesys: starting kamailio on udp/tcp $addr:$port"
echo "  control socket: kamcmd -s unix:$ctl core.modules"
echo "  log: stderr (this terminal); Ctrl-C stops it"
exec /usr/sbin/kamailio -DD -E -f "$top/etc/kamailio.cfg" \
	-L "/usr/lib/x86_64-linux-gnu/kamailio/modules:$top/modules" -Y "$run" \
	-A "LISTEN_UDP=udp:$addr:$port" -A "LISTEN_TCP=tcp:$addr:$port" \
	-A "CTL_SOCK=\"unix:$ctl\""
