"""The 49 messages of RFC 4475 section 3 (test/torture/rfc4475/, byte-exact)
through the reference config with a pool, over UDP, TCP and TLS, and through
stock Kamailio with the same config minus our modules (rfc4475_util.stock_cfg).

For every message and transport: the outcome (final reply to the sender,
relayed to the pool's SIP Server or not) is the expected one of EXPECTED,
ours is never worse than stock's (the same outcome), and no process crashes (the harness fails on
CRITICAL/BUG/segfault lines, and every kamailio process must still be there).
RFC4475_SHOW=1 prints the table (docs/robustness.md has it)."""

import base64
import gzip
import hashlib
import io
import os
import tarfile
import zlib

import pytest

import harness
import ha_util
import sticky_env
from rfc4475_util import (ARCHIVE_SHA256, NAMES, NOT_SECTION_3, RFC_DIR,
                          SECTIONS, archive_from_rfc_text, archive_members,
                          listings_from_rfc_text, send_all, stock_cfg)
from tls_ua import Certs

TRANSPORTS = ("udp", "tcp", "tls")

# expected outcome of our proxy (and of stock: they are the same)
#   "relayed+200": the pool's SIP Server got it and its 200 came back
#   "400", "420", "483": answered by the proxy
#   "no-reply": dropped (a response nobody asked for, a message stock
#   Kamailio's parser or the reference cfg's sanity_check gives up on)
# "a|b": either (a race inside stock Kamailio); a dict: per transport.
# Where stock's parser is the limit the comment says so (RFC 4475 expects
# these valid messages to be processed): see test/torture/README.md.
R = "relayed+200"
STREAM_ONLY = {"udp": "400", "tcp": "no-reply", "tls": "no-reply"}
EXPECTED = {
    # 3.1.1 valid messages
    "wsinv": "no-reply",        # stock parser: LWS around "/" in Via, CSeq folded
    "intmeth": "no-reply",      # stock parser: ':' right after the header name
    "esc01": R,
    "escnull": R,
    "esc02": "no-reply",        # stock parser: "C%6Fntact" header name
    "lwsdisp": R,
    "longreq": R,
    # UDP: stock's sanity 400s the trailing octets (RFC: ignore them); on a
    # stream both requests are relayed, the REGISTER's 200 reaches the sender
    # or not (stock tm reply routing on a connection carrying two requests)
    "dblreq": {"udp": "400", "tcp": R + "|relayed+no-reply",
               "tls": R + "|relayed+no-reply"},
    "semiuri": R,
    "transports": R,
    "mpart01": R,
    "unreason": "no-reply",     # a response matching no transaction
    "noreason": "no-reply",
    # 3.1.2 invalid messages
    "badinv01": "no-reply",     # Via does not parse: nowhere to answer
    "clerr": STREAM_ONLY,       # on a stream: waits for the missing body
    "ncl": "no-reply",          # Content-Length does not parse
    "scalar02": "400",
    "scalarlg": "no-reply",     # response
    "quotbal": "no-reply",      # To does not parse
    "ltgtruri": "400",
    "lwsruri": "no-reply",      # request line does not parse
    "lwsstart": "no-reply",
    "trws": R,                  # trailing SP tolerated (RFC: may be)
    "escruri": R,               # escaped headers in R-URI relayed as is
    "baddate": R,               # RFC: a proxy forwards it
    "regbadct": R,
    "badaspec": R,
    "baddn": STREAM_ONLY,       # UDP: 400; stream: end of headers not found
    "badvers": "no-reply",      # Via SIP/7.0 does not parse
    "mismatch01": "400",
    "mismatch02": "400",
    "bigcode": "no-reply",      # response
    # 3.2 transaction layer
    "badbranch": R,
    # 3.3 application layer
    "insuf": "no-reply",        # no Call-ID/From/To: core drops it
    "unkscm": "400",            # sanity: R-URI scheme
    "novelsc": "400",
    "unksm2": "400",            # sanity: To/From URI scheme
    "bext01": "420",            # sanity: Proxy-Require
    "invut": R,
    "regaut01": "no-reply",     # sanity "digest" check: non-digest credentials
    "multi01": "no-reply",      # two Call-IDs...: "required headers not found"
    "mcl01": "no-reply",        # duplicate Content-Length
    "bcast": "no-reply",        # response
    "zeromf": "483",
    "cparam01": R,
    "cparam02": R,
    "regescrt": R,
    "sdp01": R,
    # 3.4 backward compatibility
    "inv2543": R,
}


def expected(name, transport):
    e = EXPECTED[name]
    e = e[transport] if isinstance(e, dict) else e
    return e.split("|")


@pytest.fixture(scope="module", params=TRANSPORTS)
def setup(request, tmp_path_factory):
    """a proxy with a pool and a stock kamailio, fresh for each transport
    (the same messages again within tm's wait time would be retransmissions)"""
    base = tmp_path_factory.mktemp("rfc4475-" + request.param)
    certs = Certs(base / "certs")
    tcfg = base / "tls.cfg"
    tcfg.write_text(sticky_env.tls_cfg(certs))
    primary = ha_util.Peer()
    backup = ha_util.Peer()
    for p in (primary, backup):
        p.start()
    pool = ha_util.write_pool(base / "pool.xml",
                              [("pair1", primary.uri, backup.uri, None)])
    procs = {}
    try:
        for kind in ("ours", "stock"):
            addr = harness.next_address()
            defines = {"WITH_TLS": None, "LISTEN_TLS": "tls:%s:5061" % addr,
                       "TLS_CFG": '"%s"' % tcfg}
            if kind == "ours":
                defines["POOL_FILE"] = '"%s"' % pool
                cfg = ha_util.reference_cfg()
            else:
                defines["STOCK_DU"] = '"%s"' % primary.uri
                cfg = stock_cfg()
            k = harness.Kamailio(base / kind, cfg_text=cfg, defines=defines,
                                 address=addr)
            procs[kind] = k
            k.start()
        ha_util.wait_pool(procs["ours"],
                          lambda p: p["pair1"]["state"] == "up",
                          what="pair1 up")
        yield request.param, procs, (primary, backup)
    finally:
        errors = []
        for k in procs.values():
            try:
                k.stop(check=True)
            except harness.HarnessError as e:
                errors.append(str(e))
        for p in (primary, backup):
            p.stop()
        if errors:
            pytest.fail("\n\n".join(errors), pytrace=False)


def children(k):
    """pids of the kamailio processes (main + children) still alive"""
    return [pid for pid, _ in k.processes()]


def test_files_byte_exact():
    """the 49 files are the octets of RFC 4475's own archive (Appendix A.1):
    each file's SHA-256 is the one computed from the archive's member
    (rfc4475_util.ARCHIVE_SHA256), and SHA256SUMS says the same"""
    assert len(NAMES) == 49
    assert sorted(NAMES) == sorted(set(ARCHIVE_SHA256) - set(NOT_SECTION_3))
    on_disk = sorted(p.name for p in RFC_DIR.glob("*.dat"))
    assert on_disk == sorted(n + ".dat" for n in NAMES)
    for name in NAMES:
        assert hashlib.sha256((RFC_DIR / (name + ".dat")).read_bytes()) \
            .hexdigest() == ARCHIVE_SHA256[name], name
    sums = {}
    for line in (RFC_DIR / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        sums[name] = digest
    assert sums == {n + ".dat": ARCHIVE_SHA256[n] for n in NAMES}


def _rfc_like_text(files, furniture=True):
    """a text laid out like RFC 4475's Appendix A: the Perl script quoting
    both markers, then the base64 of a .tar.gz of files with page breaks"""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name + ".dat")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    b64 = base64.b64encode(gzip.compress(buf.getvalue(), mtime=0)).decode()
    rows = ["   " + b64[i:i + 60] for i in range(0, len(b64), 60)]
    if furniture:
        rows.insert(len(rows) // 2, "\n\nSparks, et al.               "
                    "Informational                     [Page 48]\n\f\n"
                    "RFC 4475               SIP Torture Test Messages"
                    "                May 2006\n\n")
    return ("   #!/usr/bin/perl\n"
            "    if (/-- BEGIN MESSAGE ARCHIVE --/ .. /-- END MESSAGE ARCHIVE --/) {\n"
            "        if ( m/^\\s*[^\\s]+\\s*$/) {\n   }\n\n"
            "A.1.  Encoded Reference Messages\n\n   -- BEGIN MESSAGE ARCHIVE --\n"
            + "\n".join(rows) + "\n   -- END MESSAGE ARCHIVE --\n").encode()


def test_archive_decoder():
    """the RFC's Figure 58 rule as archive_from_rfc_text() applies it: the
    octets come back whole across page breaks; a lost line is seen"""
    files = {"a": b"OPTIONS sip:x SIP/2.0\r\n\x00\xff" * 40,
             "b": bytes(range(256)) * 8}
    text = _rfc_like_text(files)
    assert archive_members(archive_from_rfc_text(text)) == files
    lines = text.split(b"\n")
    cut = next(i for i, x in enumerate(lines) if x.startswith(b"   H4sI")) + 1
    with pytest.raises((OSError, EOFError, zlib.error, tarfile.TarError)):
        archive_members(archive_from_rfc_text(b"\n".join(
            lines[:cut] + lines[cut + 1:])))
    # one octet changed inside the deflate stream: gzip's CRC32 sees it
    data = bytearray(archive_from_rfc_text(text))
    data[len(data) // 2] ^= 0x20
    with pytest.raises((OSError, EOFError, zlib.error, tarfile.TarError)):
        archive_members(bytes(data))


def test_listing_rules():
    """a section 3 listing rebuilt with the RFC's section 2 conventions"""
    text = b"""      Message Details : one

      INVITE sip:a@b SIP/2.0
      <allOneLine>
      To: "x<hex>00</hex>y"
       <sip:c@d>
      </allOneLine>
      Max-Forwards: 1<repeat count=3>0</repeat>



Sparks, et al.               Informational                     [Page 9]
\f
RFC 4475               SIP Torture Test Messages                May 2006


      Content-Length: 2

      <hex>
      0D0A
      </hex>

   Prose again.

      Message Details : two

      OPTIONS sip:a@b SIP/2.0
      Content-Length: 0

3.1.2.  Next
"""
    assert listings_from_rfc_text(text) == {
        "one": b'INVITE sip:a@b SIP/2.0\r\nTo: "x\x00y" <sip:c@d>\r\n'
               b"Max-Forwards: 1000\r\nContent-Length: 2\r\n\r\n\r\n\r\n",
        "two": b"OPTIONS sip:a@b SIP/2.0\r\nContent-Length: 0\r\n\r\n"}


def test_rfc4475(setup):
    transport, procs, members = setup
    before = {kind: children(k) for kind, k in procs.items()}
    res = {kind: send_all(k, NAMES, transport, members)
           for kind, k in procs.items()}
    if os.environ.get("RFC4475_SHOW"):
        for n in NAMES:
            print("%-9s %-11s %-5s ours=%-14s stock=%s"
                  % (SECTIONS[n], n, transport, res["ours"][n], res["stock"][n]))
    for kind, k in procs.items():
        assert k.proc.poll() is None, "%s kamailio exited" % kind
        for pid in before[kind]:
            assert os.path.exists("/proc/%d" % pid), \
                "%s kamailio process %d died" % (kind, pid)
        assert not k.failures(), k.failures()
    wrong, worse = [], []
    for n in NAMES:
        ours, stock = str(res["ours"][n]), str(res["stock"][n])
        ok = expected(n, transport)
        if ours not in ok:
            wrong.append("%s %s: %s, expected %s (stock: %s)"
                         % (SECTIONS[n], n, ours, "|".join(ok), stock))
        # never worse than stock: the same outcome (or both among the
        # outcomes of a race inside stock Kamailio)
        if ours != stock and not (ours in ok and stock in ok):
            worse.append("%s %s: ours %s, stock %s" % (SECTIONS[n], n, ours, stock))
    assert not wrong and not worse, "\n".join(wrong + worse)
