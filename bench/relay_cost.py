#!/usr/bin/env python3
"""Per-call cost of routing a call to the active SIP Server.

Kamailio configs doing the same job for the same SIPp calls:
  plain               t_relay to a fixed address + record_route() (the floor)
  dispatcher          ds_select_dst() priority algorithm + record_route()
  dispatcher_same_rr  the same, Record-Route carrying pair and DN
  genesys_ha_*        ha_select_serving() + ha_record_route() (from
                      relay_cost_ha.py: initial_only, initial_only_rr_dn_0,
                      and genesys_ha with ha_route_in_dialog() as well)
and for each the script reports callgrind instructions per call (stable)
and kamailio CPU seconds per 10,000 calls (noisy, indicative).

Usage: bench/relay_cost.py [--quick] [--out docs/benchmarks-relay.md]
"""

import argparse
import sys
import tempfile
from pathlib import Path

import benchlib
from cfgbuild import kamailio_cfg  # noqa: E402 (benchlib's sys.path)


COMMON_ROUTE = """
request_route {
	if (!mf_process_maxfwd_header("10")) { sl_send_reply("483", "Too Many Hops"); exit; }
	if (has_totag()) {
		if (loose_route()) { %(in_dialog)s t_relay(); exit; }
		if (is_method("ACK")) { if (t_check_trans()) t_relay(); exit; }
		sl_send_reply("404", "Not here"); exit;
	}
	if (is_method("CANCEL")) { if (t_check_trans()) t_relay(); exit; }
	t_check_trans();
%(initial)s
	if (!t_relay()) sl_reply_error();
	exit;
}
"""

CONFIGS = {
    "plain": {
        "modules": "",
        "initial": """	$du = "sip:" + $(ct{s.select,0,>}) ;
	$du = $null;
	$du = "sip:UAS_HOSTPORT";
	record_route();""",
        "in_dialog": "",
    },
    "dispatcher": {
        "modules": """loadmodule "dispatcher"
modparam("dispatcher", "list_file", "DS_LIST")
modparam("dispatcher", "ds_ping_interval", 5)
modparam("dispatcher", "ds_probing_mode", 1)
modparam("dispatcher", "ds_ping_from", "sip:bench@localhost")
""",
        "initial": """	if (!ds_select_dst("1", "8")) { sl_send_reply("503", "Service Unavailable"); exit; }
	record_route();""",
        "in_dialog": "",
    },
}


# dispatcher carrying the information genesys_ha puts in its Record-Route
# (the pair, SIPS_Bench in relay_cost_ha, and the caller's DN, seed 001):
# what a dispatcher config would need before anything could route its
# in-dialog requests by pair
CONFIGS["dispatcher_same_rr"] = dict(
    CONFIGS["dispatcher"],
    initial=CONFIGS["dispatcher"]["initial"].replace(
        "record_route();", 'record_route(";gha=SIPS_Bench*$fU");'))


def render(name, uas_hostport, workdir, extra_configs=None):
    c = dict(CONFIGS, **(extra_configs or {}))[name]
    text = kamailio_cfg(debug=1, modules=("tm", "sl", "rr", "pv", "maxfwd",
                                          "siputils", "textops"),
                        body=c["modules"] + COMMON_ROUTE % c)
    text = text.replace("UAS_HOSTPORT", uas_hostport)
    if "DS_LIST" in text:
        ds = Path(workdir) / ("dispatcher-%s.list" % name)
        # the active SIP Server first (priority), a silent backup second
        ds.write_text("1 sip:%s 0 10\n1 sip:%s 0 5\n"
                      % (uas_hostport, benchlib.ADDR_SILENT + ":5060"))
        text = text.replace("DS_LIST", str(ds))
    return text


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="small call counts")
    ap.add_argument("--configs", default="plain,dispatcher,dispatcher_same_rr,"
                    "genesys_ha_initial_only,genesys_ha_initial_only_rr_dn_0,"
                    "genesys_ha")
    ap.add_argument("--out")
    args = ap.parse_args()
    extra = {}
    try:
        import relay_cost_ha  # provided with genesys_ha
        extra = relay_cost_ha.CONFIGS
    except ImportError:
        pass
    names = [n for n in args.configs.split(",") if n in CONFIGS or n in extra]
    cg_calls = (20, 70) if args.quick else (50, 250)
    cpu_calls = 1000 if args.quick else 10000
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        for name in names:
            uas_addr = benchlib.ADDR_UAS
            hostport = "%s:5060" % uas_addr
            cfg = render(name, hostport, tmp, extra)
            setup = getattr(extra.get(name, {}), "get", lambda *_: None)("setup")
            defines = setup(tmp, hostport) if setup else {}
            ir = benchlib.instructions_per_call(Path(tmp) / name, cfg, defines,
                                                calls=cg_calls, uas_address=uas_addr)
            cpu, ok = benchlib.cpu_seconds_per(Path(tmp) / name, cfg, defines,
                                               calls=cpu_calls, rate=250,
                                               uas_address=uas_addr)
            rows.append((name, ir, cpu * 10000.0 / cpu_calls, ok, cpu_calls))
            print("%-12s %10.0f instr/call  %6.2f CPU s per 10k calls (%d/%d calls ok)"
                  % (name, ir, cpu * 10000.0 / cpu_calls, ok, cpu_calls), flush=True)
    base = dict((r[0], r[1]) for r in rows).get("plain")
    lines = ["| config | instructions per call | vs plain | CPU s per 10,000 calls |",
             "|---|---|---|---|"]
    for name, ir, cpu10k, ok, n in rows:
        rel = "%+.1f %%" % ((ir / base - 1) * 100) if base else "-"
        lines.append("| %s | %.0f | %s | %.2f |" % (name, ir, rel, cpu10k))
    table = "\n".join(lines)
    print(table)
    if args.out:
        Path(args.out).write_text(table + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
