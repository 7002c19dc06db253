"""Send the RFC 4475 torture messages (test/torture/rfc4475/*.dat, byte-exact)
to a running kamailio over UDP, TCP or TLS and classify what happens to each:
the final reply the sender gets, and whether a pool member received it.

Also builds the "stock" configuration: the reference etc/kamailio.cfg minus
our three modules (see stock_cfg()), used as the yardstick of "never worse
than stock Kamailio"."""

import base64
import gzip
import hashlib
import io
import re
import select
import socket
import ssl
import sys
import tarfile
import time
import zlib

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


# RFC 4475 Appendix A ("Bit-Exact Archive of Each Test Message"), A.1: the
# messages as a base64-encoded gzip tar archive between "-- BEGIN MESSAGE
# ARCHIVE --" and "-- END MESSAGE ARCHIVE --".  Decoded from the RFC's text
# with its own rule (Figure 58, archive_from_rfc_text()), it is 7,325 octets
# with this SHA-256 (gzip's CRC32 checks out), and holds 50 members with the
# SHA-256 below: the 49 messages of section 3, named as in each section's
# "Message Details", and test.dat, which no section describes (not used
# here).  test/torture/rfc4475/*.dat must be these octets; SHA256SUMS lists
# the same digests for sha256sum -c.  To check again from a copy of the RFC:
# /usr/bin/python3 test/system/rfc4475_util.py verify rfc4475.txt
ARCHIVE_TGZ_SHA256 = \
    "4ce03214334379f350f0d1f7998ac03dbe1ce046676551adca2a5e8fb0f819dd"
ARCHIVE_SHA256 = {
    "badaspec": "f8f6e2f4247287b0be6adb5ac222a6db4759395e44d27d2ddb9b39393e94867e",
    "badbranch": "cb049c727f16b5ec49e822f9e8b7d0ee20ca2d20ffb50baecd0b411a5e64fa7d",
    "baddate": "1208a6e3e0c8a8c33a06a1f3733d158413cb72e58c379d094c4ecea11e9d4c28",
    "baddn": "9d9428e8017092f194ec11077ba6865c251308cdfd7fd9db6a993b28e5748951",
    "badinv01": "9ee2b88f2e0b5a9eeb9bf729b6177f0a0c7d0b5e6c84be593e0480d7962f3ab8",
    "badvers": "037d702d19e934bfeebbd2609050d7d54928d590cf90c78f3914522771dd8e03",
    "bcast": "073637c63597199179cf5fc91b980b2d530c066a0048ea3b908772def57b4c36",
    "bext01": "57181987c02c4f5752b7aa8c2847311f6184216ce7621e40303015949e70761c",
    "bigcode": "f79450070975da54c3525c9a5cbe75bae3c9d8cb92eba609772c26f66f225c2e",
    "clerr": "d9da629086a38df433438fb0fb19a8730f34516f049a5520dd0cac3285485290",
    "cparam01": "dfa6b5cdb289adc694b9b7e103ebfa7a2167335c46e5dc9de67055021910ae1c",
    "cparam02": "e93574215bd1d804bb46cc15ca6176b567def7ea1b15f72ab2c2dcf598af465a",
    "dblreq": "a6be48426565c2a705389c4ce2ea17e57b891cb13f80490a2cb9392c797b46ef",
    "esc01": "be3a316d4ce5f69cad474646191e390dd4b50fc8371e44b5197fe1237781973e",
    "esc02": "9a9c59449f00327b02071feafc8e5c2a261c98c818044167894cc17809a12199",
    "escnull": "263fe2ecd12a5ccbb6c67b3174e9211d11da9b600e7d69666a86d2ee42873e90",
    "escruri": "c3cf30af13a9d107829cc105effd79355f1139c6ecc683a048b4c27951f8f416",
    "insuf": "1e3efd9f3b238c6351ba12bc7eb46d843f2761b5d4a6b82b63bffdf07f2c5aee",
    "intmeth": "b957a8292c1c0a9851fe94705b90f94320738f43aacde64998e401f742ef688d",
    "inv2543": "76fac8afe22dee49ea696b511621946694897ac7030fc5d07f57c8b487ce0521",
    "invut": "9b39e824947df46f90f824cd308fb3c118f548d94637f581101e355b381a0d92",
    "longreq": "185739292bc676760e5b1cca77c87705aa570240171c506ad76f8c35af0ecdaa",
    "ltgtruri": "bcacb2dc17610e8cc8f9b8b0e3d6ee65ab473f93787a03bbd33579e1cea473df",
    "lwsdisp": "d1b36b6316c12824f6f04bf6b1fd1f021cade9b74871693b9c3474cd9fa7f4e6",
    "lwsruri": "3e22ceeca585ad23cc180208e2dad94e0a5aa4bb877a61cac443aa927f758b9e",
    "lwsstart": "f884e5626c6c5b1210cfc4a3540b8a28bd52939cff092f3f0c5c971e032adb0e",
    "mcl01": "887191619bf003b7e87399200b5cf4c3b5397344dbf70288ad5e23bd157b7fe4",
    "mismatch01": "a2c285636e451e75420da0cc62ee55ca3e398827008418befbfb078726bf0793",
    "mismatch02": "01b287f9a9c492f7f57405c36c8a2af0e2393896ed2d25fb92b502f2a6722bc4",
    "mpart01": "92147c8e24997bac59629e1b163767697d0d6d499af87f89e325d69968bec3ba",
    "multi01": "d156ab12105b4bfd8a6498de6f7195087058162b8cda1606169855b722411791",
    "ncl": "7ea6538edc1f054fdb6cd1c821040460cffca3cb682fa2e8e2a502d92170b4c2",
    "noreason": "07e11e470a69fffa3674de805e5165d1351a9439a91045ee70c9570ea24ab4fe",
    "novelsc": "9a50a7343fcf685e77c4d0f477138a28f32a41c75aa566d200f3df210b01e648",
    "quotbal": "e61978a2ea359fc666f0336fe4dbc623447532280e3273ea98119b3d3f788c84",
    "regaut01": "885ba0488872cfc04a3c7622854b8381955a5ee890745d6010834e3731a73faa",
    "regbadct": "575d27530275814c1c98be164808fac89a0e2b4fc899dadcd97e6ba499437bda",
    "regescrt": "dab4087c133348b06fd7b3c4c7ef15094f8754e265e4e8c2137bb3ecda2ef477",
    "scalar02": "53158177326568e9964bce5dcfac27a2bf8a90953bbc03f6c5e2775864a97e4b",
    "scalarlg": "0957eca31737e3592eb1418bb41e9f5219278a78ff420111620d7fb60175b551",
    "sdp01": "497c5f1ced6c7b579b48075e2dca919ce9b819a735964128a6e744a3a0b9e57f",
    "semiuri": "87bbaed6b4b354dbd3c5c7a20e66686303c63e43a0aa19b89de1ac75231611a2",
    "test": "fe1cb604956316c0831e28bdc2ebda829a999e187ee801b08251bdb6e74014c7",
    "transports": "33b4553a3b9418121b099ff07882535151edd6a1e81898c63a916aad2cbf90bc",
    "trws": "64ae20694026e28c10746b57386b7fd1276de02b6f8d42d418070e87d6f4499f",
    "unkscm": "81be1a6a566c7ab52fe1c58c4a75440dfd697ad04c5e09fa71340de7da7b8bbb",
    "unksm2": "f6914409ced613ef5eb56e264d2f096dac26ab9e397d6a638934d2027f1f6acb",
    "unreason": "4f939d6ebf4817eea70f011d3209e83732872ffc20ffd304b244084dc392f4d7",
    "wsinv": "d6f6cdee99cd0a1f8e3d9a0fdd67c877700e19ab86d8186dada06f61260e3e61",
    "zeromf": "50954ef47acca4f9f5263ded06246d06dee4e2ee508a8d284191795d7fddf365",
}
NOT_SECTION_3 = ("test",)

# Where the section 3 listing, rebuilt with the RFC's conventions (section 2,
# listings_from_rfc_text()), is not the archive's octets.  The archive is the
# bit-exact form (section 1: "To resolve any remaining ambiguity, a
# bit-accurate version of each message is encapsulated in an appendix").
LISTING_DIFFERS = {
    # the listing cannot show these CRLFs
    "baddn": "no empty line after the headers (their end is never seen)",
    "mcl01": "the body ends in an extra CRLF",
    "multi01": "the body ends in an extra CRLF",
    "mpart01": "the empty line before the binary part falls on a page break",
    # the listing and the archive disagree
    "dblreq": "three CRLFs between the REGISTER and the INVITE (listing: two)",
    "trws": "Via host1.examle.com (listing: host1.example.com)",
}


def message(name):
    return (RFC_DIR / (name + ".dat")).read_bytes()


def archive_from_rfc_text(text):
    """the octets of RFC 4475 Appendix A.1's archive, decoded from the RFC's
    text (bytes) by the RFC's own rule (Figure 58): the lines from a line
    with "-- BEGIN MESSAGE ARCHIVE --" to one with "-- END MESSAGE ARCHIVE
    --" that are a single word are base64 (page headers and footers have
    spaces); the Perl script quoting both markers on one line adds nothing"""
    data, inside = [], False
    for line in text.split(b"\n"):
        if b"-- BEGIN MESSAGE ARCHIVE --" in line:
            inside = True
        if inside and re.match(rb"^\s*\S+\s*$", line):
            data.append(line.strip())
        if b"-- END MESSAGE ARCHIVE --" in line:
            inside = False
    return base64.b64decode(b"".join(data), validate=True)


def archive_members(tgz):
    """{name without .dat: octets} of the regular files of a .tar.gz
    (gzip.decompress() checks the CRC32 and length of the whole stream)"""
    out = {}
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(tgz)), mode="r:") as tar:
        for m in tar.getmembers():
            if m.isfile():
                name = m.name.rsplit("/", 1)[-1]
                assert name.endswith(".dat") and name[:-4] not in out, m.name
                out[name[:-4]] = tar.extractfile(m).read()
    return out


_FOOTER = re.compile(rb"^Sparks, et al\.\s+Informational\s+\[Page \d+\]$")


def _expand(line):
    """<hex>..</hex> and <repeat count=N>..</repeat> (RFC 4475 2.2, 2.3)"""
    line = re.sub(rb"<hex>([0-9A-Fa-f]*)</hex>",
                  lambda m: bytes.fromhex(m.group(1).decode()), line)
    return re.sub(rb"<repeat count=(\d+)>(.*?)</repeat>",
                  lambda m: m.group(2) * int(m.group(1)), line)


def listings_from_rfc_text(text):
    """{name: octets} of the section 3 listings ("Message Details : name",
    the message indented by 6 spaces), rebuilt with the conventions of RFC
    4475 section 2: page breaks (and the empty lines around them) dropped,
    the lines between <allOneLine> tags (or between <hex> and </hex> on
    lines of their own) concatenated, <hex> and <repeat> expanded, lines
    ending in CRLF, an empty line closing the headers when the listing has
    none.  What a listing cannot show (trailing CRLFs, an empty line on a
    page break) is in LISTING_DIFFERS."""
    lines = []
    src = text.split(b"\n")
    i = 0
    while i < len(src):
        if _FOOTER.match(src[i]):
            while lines and not lines[-1].strip():
                lines.pop()
            i += 1
            while i < len(src) and (not src[i].strip(b" \f")
                                    or src[i].startswith(b"RFC 4475 ")):
                i += 1
            continue
        lines.append(src[i])
        i += 1
    out = {}
    for i, line in enumerate(lines):
        m = re.match(rb"^ {6}Message Details : (\S+)$", line)
        if not m:
            continue
        body = []
        for x in lines[i + 1:]:
            if x.strip() and not x.startswith(b" " * 6):
                break
            body.append(x[6:])
        while body and not body[-1]:
            body.pop()
        while body and not body[0]:
            body.pop(0)
        msg, k = [], 0
        while k < len(body):
            tag = {b"<allOneLine>": (b"</allOneLine>", b"", b""),
                   b"<hex>": (b"</hex>", b"<hex>", b"</hex>")}.get(body[k])
            if tag:
                end = body.index(tag[0], k)
                msg.append(tag[1] + b"".join(body[k + 1:end]) + tag[2])
                k = end + 1
            else:
                msg.append(body[k])
                k += 1
        data = b"".join(_expand(x) + b"\r\n" for x in msg)
        if b"\r\n\r\n" not in data:
            data += b"\r\n"
        out[m.group(1).decode()] = data
    return out


def verify_rfc_text(text):
    """problems (empty: none) between a copy of RFC 4475's text (bytes) and
    test/torture/rfc4475/: the archive, its members, the listings, and the
    section of each message (SECTIONS)"""
    problems = []
    tgz = archive_from_rfc_text(text)
    if hashlib.sha256(tgz).hexdigest() != ARCHIVE_TGZ_SHA256:
        problems.append("archive: SHA-256 %s" % hashlib.sha256(tgz).hexdigest())
    try:
        members = archive_members(tgz)
    except (OSError, EOFError, zlib.error, tarfile.TarError) as e:
        problems.append("archive does not decode: %s" % e)
        members = {}
    if sorted(members) != sorted(ARCHIVE_SHA256):
        problems.append("archive members: %s" % sorted(members))
    for name, data in sorted(members.items()):
        if hashlib.sha256(data).hexdigest() != ARCHIVE_SHA256.get(name):
            problems.append("%s: archive member's SHA-256 differs" % name)
        if name not in NOT_SECTION_3 and (
                not (RFC_DIR / (name + ".dat")).exists()
                or message(name) != data):
            problems.append("%s.dat: not the archive's octets" % name)
    listings = listings_from_rfc_text(text)
    if sorted(listings) != sorted(SECTIONS):
        problems.append("listings: %s" % sorted(listings))
    for name, data in sorted(listings.items()):
        same = data == members.get(name)
        if same == (name in LISTING_DIFFERS):
            problems.append("%s: listing %s the archive" % (
                name, "equals" if same else "differs from"))
    section = None
    for line in text.split(b"\n"):
        m = re.match(rb"^(3(?:\.\d+)+)\.\s+\S", line)
        if m:
            section = m.group(1).decode()
        m = re.match(rb"^\s+Message Details : (\S+)$", line)
        if m and SECTIONS.get(m.group(1).decode()) != section:
            problems.append("%s: in section %s" % (m.group(1).decode(), section))
    return problems


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


if __name__ == "__main__":
    # /usr/bin/python3 test/system/rfc4475_util.py verify <rfc4475.txt>
    if len(sys.argv) != 3 or sys.argv[1] != "verify":
        sys.exit("usage: rfc4475_util.py verify <a copy of RFC 4475's text>")
    with open(sys.argv[2], "rb") as f:
        found = verify_rfc_text(f.read())
    print("\n".join(found) or "RFC 4475: archive, its 50 members, the 49 "
          "files, the listings and the sections agree")
    sys.exit(1 if found else 0)
