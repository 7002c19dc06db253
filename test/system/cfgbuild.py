"""One builder for the small kamailio.cfg files of the system tests and the
benches (bench/ imports it through sys.path, as it does the harness).

Every such cfg starts the same way: #!KAMAILIO, the log level, logging to
stderr (the harness runs kamailio -E and reads its log), the process
counts, the harness's listen defines, no aliases and no DNS, then ctl on
the harness's CTL_SOCK (kamcmd) and the modules the caller names.  What
differs (more globals, modparams, routes) is the caller's `body`.  The
harness adds jsonrpcs for Kamailio.rpc_json to every cfg itself.
"""


def modparam(module, name, value):
    """One modparam line: an int bare, a string quoted, a Define as is."""
    if isinstance(value, int):
        return 'modparam("%s", "%s", %d)' % (module, name, value)
    if isinstance(value, Define):
        return 'modparam("%s", "%s", %s)' % (module, name, value)
    return 'modparam("%s", "%s", "%s")' % (module, name, value)


class Define(str):
    """A value written unquoted: a cfg define (POOL_FILE, TLS_CFG, ...)."""


def kamailio_cfg(body="", modules=(), debug=2, children="CHILDREN",
                 tcp_children=None, listen=("LISTEN_UDP",), globals_="",
                 log_stderror=True):
    """The common header, then `body` (more loadmodule and modparam lines,
    routes, cfgengine ...).  children/tcp_children: a number or a define
    (the harness defines CHILDREN); listen: listen= values (harness defines
    LISTEN_UDP, LISTEN_TCP; LISTEN_TLS where the caller defines it);
    globals_: more global parameter lines, after the common ones; modules:
    loaded in this order after ctl."""
    lines = ["#!KAMAILIO",
             "debug=%d" % debug,
             "log_stderror=%s" % ("yes" if log_stderror else "no"),
             "children=%s" % children]
    if tcp_children is not None:
        lines.append("tcp_children=%s" % tcp_children)
    lines += ["listen=%s" % sock for sock in listen]
    lines += ["auto_aliases=no", "dns=no", "rev_dns=no"]
    if globals_:
        lines.append(globals_.strip("\n"))
    lines.append("")
    lines += ['loadmodule "%s"' % m for m in ("ctl",) + tuple(modules)]
    lines.append('modparam("ctl", "binrpc", CTL_SOCK)')
    return "\n".join(lines) + "\n" + body
