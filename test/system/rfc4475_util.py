"""Send the RFC 4475 torture messages (test/torture/rfc4475/*.dat, byte-exact)
to a running kamailio over UDP, TCP or TLS and classify what happens to each:
the final reply the sender gets, and whether a pool member received it.

Also builds the "stock" configuration: the reference etc/kamailio.cfg minus
our three modules (see stock_cfg()), used as the yardstick of "never worse
than stock Kamailio"."""

import re
import select
import socket
import ssl
import time

import harness

RFC_DIR = harness.TOP / "test" / "torture" / "rfc4475"

# RFC 4475 section 3: file name -> section (all 49 messages)
SECTIONS = {
    "wsinv": "3.1.1.1", "intmeth": "3.1.1.2", "esc01": "3.1.1.3",
    "escnull": "3.1.1.4", "esc02": "3.1.1.5", "lwsdisp": "3.1.1.6",
    "longreq": "3.1.1.7", "dblreq": "3.1.1.8", "semiuri": "3.1.1.9",
    "transports": "3.1.1.10", "mpart01": "3.1.1.11", "unreason": "3.1.1.12",
    "noreason": "3.1.1.13",
    "badinv01": "3.1.2.1", "clerr": "3.1.2.2", "ncl": "3.1.2.3",
    "scalar02": "3.1.2.4", "scalarlg": "3.1.2.5", "quotbal": "3.1.2.6",
    "ltgtruri": "3.1.2.7", "lwsruri": "3.1.2.8", "lwsstart": "3.1.2.9",
    "trws": "3.1.2.10", "escruri": "3.1.2.11", "baddate": "3.1.2.12",
    "regbadct": "3.1.2.13", "badaspec": "3.1.2.14", "baddn": "3.1.2.15",
    "badvers": "3.1.2.16", "mismatch01": "3.1.2.17", "mismatch02": "3.1.2.18",
    "bigcode": "3.1.2.19",
    "badbranch": "3.2.1",
    "insuf": "3.3.1", "unkscm": "3.3.2", "novelsc": "3.3.3", "unksm2": "3.3.4",
    "bext01": "3.3.5", "invut": "3.3.6", "regaut01": "3.3.7",
    "multi01": "3.3.8", "mcl01": "3.3.9", "bcast": "3.3.10", "zeromf": "3.3.11",
    "cparam01": "3.3.12", "cparam02": "3.3.13", "regescrt": "3.3.14",
    "sdp01": "3.3.15",
    "inv2543": "3.4.1",
}

NAMES = sorted(SECTIONS, key=lambda n: [int(x) for x in SECTIONS[n].split(".")])


def message(name):
    return (RFC_DIR / (name + ".dat")).read_bytes()


def call_id(data):
    m = re.search(rb"^(?:call-id|i)[ \t]*:[ \t]*(\S+)", data, re.I | re.M)
    return m.group(1) if m else None


def via_port(data):
    """the port of the first Via's sent-by (5060 when absent), where
    kamailio sends its UDP replies (at the source address)"""
    m = re.search(rb"^(?:via|v)[ \t]*:[ \t]*SIP/[\d.]+/\w+[ \t]+[^;:\s,]+:(\d+)",
                  data, re.I | re.M)
    return int(m.group(1)) if m else 5060


def drop_ifdef_blocks(text, name):
    """text without every '#!ifdef name' ... matching '#!endif' block
    (nested #!ifdef/#!ifndef blocks inside are counted)"""
    out, depth = [], 0
    for line in text.splitlines(keepends=True):
        word = line.strip()
        if depth == 0 and word == "#!ifdef " + name:
            depth = 1
            continue
        if depth:
            if word.startswith("#!ifdef") or word.startswith("#!ifndef"):
                depth += 1
            elif word == "#!endif":
                depth -= 1
            continue
        out.append(line)
    assert depth == 0, "unbalanced #!ifdef %s" % name
    return "".join(out)


def stock_cfg():
    """etc/kamailio.cfg minus genesys_oos, genesys_ha and genesys_tlssticky:
    their loadmodule/modparam lines, the genesys_ha route blocks and event
    routes removed, the sticky_*() calls replaced by their "not for us"
    outcome; run in lab mode (no POOL_FILE) with $du = STOCK_DU so that it
    relays to the same SIP Server as the proxy with a pool.  Every edit is
    asserted, so a change of the reference cfg shows here."""
    text = harness.REFERENCE_CFG.read_text()
    out = []
    for line in text.splitlines(keepends=True):
        if re.match(r'\s*(loadmodule\s+"genesys_|modparam\("genesys_)', line):
            continue
        out.append(line)
    text = "".join(out)

    def sub(old, new, count=1):
        nonlocal text
        assert text.count(old) == count, "stock_cfg: %r found %d times" % (
            old, text.count(old))
        text = text.replace(old, new)

    a = text.index("# ---- SIP Server HA pool (genesys_ha) ----")
    b = text.index("# ----- genesys_tlssticky: TLS/TCP connection stickiness -----")
    text = text[:a] + text[b:]
    sub("\tsticky_route();\n\t$var(sticky) = $rc;", "\t$var(sticky) = -1;")
    sub("\tsticky_register();\n\tswitch ($rc) {",
        "\t$var(sr) = -1;\n\tswitch ($var(sr)) {")
    sub("sticky_rr();", "")
    sub("\t\tsticky_reply();", "\t\t$var(sr) = 0;")
    sub("\t}\n\troute(RELAY);\n#!endif\n}",
        "\t}\n\t$du = STOCK_DU;\n\troute(RELAY);\n#!endif\n}")
    # the HTTP management parts (WITH_HTTP_MGMT, off here) name genesys_ha's
    # RPC and the pool gauges
    for start, end in (("#!ifdef WITH_HTTP_MGMT\n# ----- HTTP management interface -----\n",
                        "#!endif\n"),
                       ("#!ifdef WITH_HTTP_MGMT\n# ----- HTTP management interface (xhttp) -----\n",
                        "# ----- end of the HTTP management interface -----\n#!endif\n")):
        assert text.count(start) == 1, "stock_cfg: %r" % start
        a = text.index(start)
        b = text.index(end, a) + len(end)
        text = text[:a] + text[b:]
    # the pool over DMQ (WITH_DMQ, off here) is genesys_ha's too
    text = drop_ifdef_blocks(text, "WITH_DMQ")
    assert "genesys" not in re.sub(r"#.*", "", text), "stock_cfg: leftover"
    assert not re.search(r"\b(ha|sticky)_\w+\(", re.sub(r"#.*", "", text))
    return text


class Outcome:
    """what happened to one message: the first final reply the sender got
    (None: none) and whether a pool member received it"""

    def __init__(self, reply=None, relayed=False):
        self.reply = reply
        self.relayed = relayed

    def __str__(self):
        parts = []
        if self.relayed:
            parts.append("relayed")
        parts.append(self.reply or "no-reply")
        return "+".join(parts)

    __repr__ = __str__


def _final(data):
    """status codes of the final replies in a received byte stream"""
    return [m.group(1).decode() for m in
            re.finditer(rb"^SIP/2\.0 ([2-6]\d\d) ", data, re.M)]


def send_all(k, names, transport, members, window=2.0, tls_port=5061):
    """Send every message from its own loopback address at once, wait
    `window` seconds, return {name: Outcome}.  members: the Peers (pool
    members) whose received requests tell what was relayed."""
    socks = {}      # name -> [socket]
    got = {n: b"" for n in names}
    mark = {id(m): len(m.received) for m in members}
    for n in names:
        data = message(n)
        peer = harness.next_address()
        if transport == "udp":
            ss = []
            for port in sorted({5060, via_port(data)}):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                s.bind((peer, port))
                ss.append(s)
            ss[0].sendto(data, (k.address, k.port))
        else:
            raw = socket.create_connection(
                (k.address, tls_port if transport == "tls" else k.port),
                timeout=5, source_address=(peer, 0))
            if transport == "tls":
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
                raw = ctx.wrap_socket(raw)
            raw.sendall(data)
            ss = [raw]
        for s in ss:
            s.setblocking(False)
        socks[n] = ss
    by_sock = {s: n for n, ss in socks.items() for s in ss}
    deadline = time.monotonic() + window
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        pending = [s for s in by_sock if s.fileno() >= 0]
        r, _, _ = select.select(pending, [], [], min(left, 0.1))
        for s in r:
            try:
                data = s.recv(65535)
            except (BlockingIOError, ssl.SSLWantReadError):
                continue
            except OSError:
                data = b""
            if not data and s.type == socket.SOCK_STREAM:
                s.close()
                continue
            got[by_sock[s]] += data
    for s in by_sock:
        s.close()
    relayed = set()
    for m in members:
        with m._lock:
            new = m.received[mark[id(m)]:]
        for _, text, src in new:
            if src[0] != k.address:
                continue
            for n in names:
                cid = call_id(message(n))
                if cid and ("\n" + text).find(cid.decode("latin-1")) >= 0:
                    relayed.add(n)
    out = {}
    for n in names:
        finals = _final(got[n])
        out[n] = Outcome(finals[0] if finals else None, n in relayed)
    return out
