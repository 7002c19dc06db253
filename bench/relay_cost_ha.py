"""genesys_ha configuration for bench/relay_cost.py: ha_select_serving() +
ha_record_route() for initial requests and ha_route_in_dialog() for
in-dialog ones (the whole routing job of the reference config), in front of
the same SIPp UAS as the plain and dispatcher configs.

The members are probed every 5 s, like dispatcher's ds_ping_interval in the
dispatcher configs: the replies to the probes reach the SIP receiver
processes that are measured, in both cases (the UAS answers OPTIONS)."""

from pathlib import Path

import benchlib

POOL = """<?xml version="1.0"?>
<pool version="1">
  <sipserver name="SIPS_Bench">
    <primary uri="sip:%s"/>
    <backup uri="sip:%s:5060"/>
  </sipserver>
</pool>
"""


def setup(workdir, uas_hostport):
    path = Path(workdir) / "genesys-pool-bench.xml"
    path.write_text(POOL % (uas_hostport, benchlib.ADDR_SILENT))
    return {"POOL_FILE": '"%s"' % path}


CONFIGS = {
    "genesys_ha": {
        "modules": """loadmodule "genesys_oos"
loadmodule "genesys_ha"
modparam("genesys_oos", "oos_check", 5)
modparam("genesys_ha", "pool_file", POOL_FILE)
""",
        "initial": """	if (ha_select_serving() < 0) { sl_send_reply("503", "Service Unavailable"); exit; }
	ha_record_route();""",
        "in_dialog": "if (ha_route_in_dialog() == -3) { sl_send_reply(\"403\", \"Forbidden\"); exit; }",
        "setup": setup,
    },
}

# the same without in-dialog routing (what dispatcher's config does)
CONFIGS["genesys_ha_initial_only"] = dict(CONFIGS["genesys_ha"], in_dialog="")

# ... and with the pair only in the Record-Route (modparam rr_dn 0)
CONFIGS["genesys_ha_initial_only_rr_dn_0"] = dict(
    CONFIGS["genesys_ha_initial_only"],
    modules=CONFIGS["genesys_ha"]["modules"]
    + 'modparam("genesys_ha", "rr_dn", 0)\n')

# ... and without the T1 check (modparam t1_probe 0): the cost of noting
# each relayed request in the T1 ring
CONFIGS["genesys_ha_t1_off"] = dict(
    CONFIGS["genesys_ha"],
    modules=CONFIGS["genesys_ha"]["modules"]
    + 'modparam("genesys_ha", "t1_probe", 0)\n')

# ... and with the Record-Route naming the pool (modparam rr_pool_name):
# the proxy writes the pool's name, port and transport instead of its own
# address (lumps built by genesys_ha instead of rr)
CONFIGS["genesys_ha_pool_rr"] = dict(
    CONFIGS["genesys_ha"],
    modules=CONFIGS["genesys_ha"]["modules"]
    + 'modparam("genesys_ha", "rr_pool_name", "sip-pool.example.com")\n')
