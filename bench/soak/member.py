#!/usr/bin/python3
"""A SIP Server pair member (or a registrar) for the soak: one process,
test/system/ha_util.Peer (OPTIONS, INVITE, BYE... answered 200, also for
dialogs it never saw: the pair shares call state), REGISTER answered 200
with the Contacts it got (what genesys_tlssticky needs to commit a phone's
binding), and only the last messages kept (an hour at 100 calls/s).

Prints "ready" once bound; on SIGTERM writes {method: count} as JSON to
--stats and exits.

Usage: member.py --address 127.x.y.z [--port 5060] --stats FILE
"""

import argparse
import collections
import json
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "test" / "system"))

import ha_util  # noqa: E402


class Member(ha_util.Peer):
    keep = 200      # sip_peer.SipPeer's message log: bounded for a long run

    def __init__(self, **kw):
        super().__init__(**kw)
        self.counts = collections.Counter()
        self.received = collections.deque(maxlen=200)

    def _reply(self, lines, code, method):
        self.counts[method] += 1
        r = super()._reply(lines, code, method)
        if method == "REGISTER":
            cs = [ln for ln in lines
                  if ln.lower().startswith(("contact:", "m:"))]
            if cs:
                r = r.replace(b"Content-Length: 0", ("\r\n".join(cs)
                              + "\r\nContent-Length: 0").encode(), 1)
        return r


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True)
    ap.add_argument("--port", type=int, default=5060)
    ap.add_argument("--stats", required=True)
    a = ap.parse_args()
    m = Member(address=a.address, port=a.port)
    done = threading.Event()

    def term(_sig, _frm):
        done.set()
    signal.signal(signal.SIGTERM, term)
    signal.signal(signal.SIGINT, term)
    m.start()
    print("ready", flush=True)
    done.wait()
    Path(a.stats).write_text(json.dumps(dict(m.counts)))
    m.stop()


if __name__ == "__main__":
    main()
