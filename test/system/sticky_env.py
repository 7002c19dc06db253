"""Shared set-up of the genesys_tlssticky system tests: a proxy cfg whose
phone hooks are the reference config's own STICKY_* blocks, a tls.cfg per
test, and helpers to look at the proxy's TCP connections."""

import re
import time

import harness
from cfgbuild import kamailio_cfg

SECRET = "test-pool-secret-0123456789abcdef"

# the route blocks of the reference config that tests exercise verbatim
_BLOCK = re.compile(r"^(?:route\[STICKY_\w+\]|onreply_route\[STICKY_REPLY\]|"
                    r"failure_route\[STICKY_\w+\])\s*\{.*?^\}",
                    re.S | re.M)
# the reference config's defines those blocks use
_DEFINES = re.compile(r"^#!ifndef (STICKY_RELAY_\w+)\n#!define .*\n#!endif$", re.M)


def sticky_blocks():
    text = harness.REFERENCE_CFG.read_text()
    blocks = _BLOCK.findall(text)
    assert len(blocks) == 6, "reference cfg lost its STICKY_* blocks"
    defines = [m.group(0) for m in _DEFINES.finditer(text)]
    assert len(defines) == 2, "reference cfg lost its STICKY_RELAY_* defines"
    return "\n".join(defines) + "\n\n" + "\n\n".join(blocks)


def render_cfg(modparams=(), debug=2, tls=True, extra_modules="",
               extra_routes="", extra_globals=""):
    """A small proxy cfg: REGISTERs go to REGISTRAR, everything else by
    Request-URI; the phone hooks are the reference config's blocks.
    extra_globals: more global parameters (listen=, tcp_keepidle=, ...)."""
    mp = "\n".join('modparam("genesys_tlssticky", "%s", %s)' % (k, v)
                   for k, v in modparams)
    tls_mod = 'modparam("tls", "config", TLS_CFG)\nmodparam("tls", "connection_timeout", 3605)\n' if tls else ""
    return kamailio_cfg(
        debug=debug, tcp_children="CHILDREN",
        listen=("LISTEN_UDP", "LISTEN_TCP") + (("LISTEN_TLS",) if tls else ()),
        globals_=("enable_tls=yes\n" if tls else "")
        + "tcp_connection_lifetime=3605\ntcp_accept_no_cl=yes\n"
        "tcp_keepalive=yes\n" + extra_globals,
        modules=("corex", "tm", "sl", "rr", "pv", "maxfwd", "textops",
                 "siputils", "xlog", "kex") + (("tls",) if tls else ())
        + ("genesys_tlssticky",),
        body=ROUTES % dict(extra_modules=extra_modules,
                           extra_routes=extra_routes, tls_mod=tls_mod,
                           secret=SECRET, mp=mp, blocks=sticky_blocks()))


ROUTES = """%(tls_mod)s%(extra_modules)s
modparam("rr", "enable_double_rr", 1)
modparam("genesys_tlssticky", "secret", "%(secret)s")
%(mp)s

request_route {
	if (!mf_process_maxfwd_header("10")) {
		sl_send_reply("483", "Too Many Hops");
		exit;
	}
	if (is_method("CANCEL")) {
		if (t_check_trans()) t_relay();
		exit;
	}
	if (has_totag()) {
		if (loose_route()) {
			route(STICKY_TOPHONE);
			route(RELAY);
		}
		if (is_method("ACK") && t_check_trans()) {
			t_relay();
		}
		exit;
	}
	remove_hf("Route");
	route(STICKY_TOPHONE);
	if (is_method("REGISTER")) {
		# as the reference config: rewrite, then to the registrar
		route(STICKY_REGISTER);
#!ifdef REGISTRAR
		$du = REGISTRAR;
#!endif
		route(RELAY);
	}
	if (is_method("INVITE|SUBSCRIBE")) {
		record_route();
		sticky_rr();
	}
	route(RELAY);
}

route[RELAY] {
	if (!t_relay()) {
		sl_reply_error();
	}
	exit;
}

%(blocks)s

%(extra_routes)s
"""


def tls_cfg(certs, method="TLSv1.2+", mutual=False, ciphers=None,
            client_certs=False):
    """tls.cfg text for the proxy (shared by the sticky, HA and OOS TLS
    tests): mutual asks the server side for client certificates;
    client_certs makes the client side present certs.server and verify its
    peers too (proxy to proxy, as DMQ over TLS)"""
    client = "verify_certificate = no\nrequire_certificate = no\n"
    if client_certs:
        client = ("verify_certificate = yes\nrequire_certificate = yes\n"
                  "private_key = %(key)s\ncertificate = %(cert)s\n"
                  "ca_list = %(ca)s\n")
    return ("""[server:default]
method = %(method)s
%(ciphers)s
verify_certificate = %(v)s
require_certificate = %(v)s
private_key = %(key)s
certificate = %(cert)s
ca_list = %(ca)s

[client:default]
method = %(method)s
""" + client) % dict(method=method, v="yes" if mutual else "no",
                     key=certs.server_key,
                     ciphers="cipher_list = %s" % ciphers if ciphers else "",
                     cert=certs.server, ca=certs.ca)


def start_proxy(kamailio_factory, workdir, certs, registrar, name="proxy",
                modparams=(), tls_method="TLSv1.2+", mutual=False, debug=2,
                address=None, ciphers=None, **cfg_kw):
    address = address or harness.next_address()
    tcfg = workdir / ("%s-tls.cfg" % name)
    tcfg.write_text(tls_cfg(certs, tls_method, mutual, ciphers))
    k = kamailio_factory(
        name=name, address=address,
        cfg_text=render_cfg(modparams, debug=debug, **cfg_kw),
        defines={"LISTEN_TLS": "tls:%s:5061" % address,
                 "TLS_CFG": '"%s"' % tcfg,
                 "REGISTRAR": '"sip:%s:%d"' % (registrar.ip, registrar.port)})
    return k


def tcp_conns(k):
    """the proxy's TCP/TLS connections as (type, src, dst-port) from
    core.tcp_list"""
    return [(c["type"], c["src_ip"], c["src_port"], c["dst_ip"], c["dst_port"])
            for c in k.rpc_json("core.tcp_list")]


def bindings(k, aor=None):
    """genesys_tlssticky.list as a list of dicts"""
    return k.rpc_json("genesys_tlssticky.list", *([aor] if aor else []))[0]["bindings"]


def stats(k):
    return k.rpc_json("genesys_tlssticky.stats")


def wait_for(pred, timeout=5.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()
