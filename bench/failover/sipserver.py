#!/usr/bin/python3
"""A Genesys SIP Server stand-in for the failover benchmark, one process per
member so that the benchmark can SIGKILL or SIGSTOP it.

It is test/system/ha_util.Peer (imported, not copied): OPTIONS answered
200, INVITE 200 with its own Contact (sip:sips@<address>:<port>: the UAC
tells the members apart by it), ACK absorbed, BYE and any other request
answered 200, also for dialogs it never saw (the pair shares call state, so a
promoted backup ends the calls set up on the primary; SIPp as UAS would
answer 481 there).

--standby: a Genesys hot-standby backup (docs/design brief: "the backup
ignores SIP until promoted"): the socket is bound (no ICMP port
unreachable) but nothing is answered, not even OPTIONS.  SIGUSR1 promotes
it: from then on it answers like the primary.

It prints "ready" once its socket is bound and its signal handlers are in
place.  On SIGTERM it writes its counters as JSON to --stats and exits; a
member that was SIGKILLed writes nothing (the benchmark does not need it).

Usage: sipserver.py --address 127.x.y.z [--port 5060] [--standby]
                    --stats FILE
"""

import argparse
import json
import os
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "test" / "system"))

import ha_util  # noqa: E402


def method_and_callid(text):
    method = text.split(" ", 1)[0]
    callid = ""
    for line in text.split("\r\n"):
        low = line.lower()
        if low.startswith("call-id:") or low.startswith("i:"):
            callid = line.split(":", 1)[1].strip()
            break
    return method, callid


def counters(peer, promoted_at):
    """what the member received (requests only), as a dict"""
    with peer._lock:
        received = list(peer.received)
    by_method = {}
    invites = set()
    first_invite_answered = None
    bye_unknown = 0
    for t, text, _src in received:
        method, callid = method_and_callid(text)
        if not method.isalpha():
            continue  # CRLF keep-alives (genesys_oos transport check)
        by_method[method] = by_method.get(method, 0) + 1
        answered = promoted_at is None or t >= promoted_at
        if method == "INVITE":
            invites.add(callid)
            if answered and first_invite_answered is None:
                first_invite_answered = t
        elif method == "BYE" and answered and callid not in invites:
            # the BYE of a call this member never set up (a call of the
            # old primary), answered 200
            bye_unknown += 1
    return {"requests": by_method,
            "promoted_at_monotonic": promoted_at,
            "first_invite_answered_monotonic": first_invite_answered,
            "bye_unknown_dialog_answered": bye_unknown}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--address", required=True)
    ap.add_argument("--port", type=int, default=5060)
    ap.add_argument("--standby", action="store_true")
    ap.add_argument("--stats", required=True)
    args = ap.parse_args()

    standby = args.standby
    # no signal before the handlers are in place (SIGUSR1's default action
    # ends the process); the Peer thread keeps them blocked for good, so
    # they are handled in this thread
    sigs = {signal.SIGUSR1, signal.SIGTERM, signal.SIGINT}
    signal.pthread_sigmask(signal.SIG_BLOCK, sigs)
    peer = ha_util.Peer(address=args.address, port=args.port,
                        options_code=None if standby else 200,
                        answer_requests=not standby)
    state = {"promoted_at": None}

    def promote(_sig, _frm):
        if state["promoted_at"] is None:
            state["promoted_at"] = time.monotonic()
        peer.options_code = 200
        peer.answer_requests = True

    def stop(_sig, _frm):
        peer.stop()
        promoted = state["promoted_at"] if standby else None
        data = counters(peer, promoted)
        tmp = args.stats + ".tmp"
        with open(tmp, "w") as fh:
            json.dump(data, fh)
        os.replace(tmp, args.stats)
        os._exit(0)

    signal.signal(signal.SIGUSR1, promote)
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    peer.start()
    signal.pthread_sigmask(signal.SIG_UNBLOCK, sigs)
    # bound and ready for signals: what the benchmark waits for (probing
    # the port with a bind of its own could take it from under us)
    print("ready", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    main()
