"""A UDP SIP Server (ha_util.Peer) in a process of its own, so a test can
SIGKILL it (its port closes: ICMP port unreachable) or SIGSTOP it (silence),
as happens to a real SIP Server.  The parent sees only the process; what the
peer received is not reported back (use a thread Peer for that)."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
PYTHON = "/usr/bin/python3"


class PeerProcess:
    """PeerProcess(address=..., invite_code=180, ...): the ha_util.Peer
    arguments; start() returns once the socket is bound."""

    def __init__(self, **kw):
        self.kw = kw
        self.address = kw.get("address")
        self.port = kw.get("port", 5060)
        self.proc = None

    @property
    def uri(self):
        return "sip:%s:%d" % (self.address, self.port)

    def start(self):
        self.proc = subprocess.Popen([PYTHON, str(Path(__file__)),
                                      json.dumps(self.kw)],
                                     stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("ready"):
            self.proc.kill()
            raise AssertionError("peer process did not start: %r" % line)
        return self

    def signal(self, sig):
        os.kill(self.proc.pid, sig)

    def kill(self):
        """SIGKILL: the port closes at once."""
        if self.proc and self.proc.poll() is None:
            self.signal(signal.SIGCONT)
            self.signal(signal.SIGKILL)
            self.proc.wait(timeout=5)

    def sigstop(self):
        """SIGSTOP; returns once the process is stopped."""
        self.signal(signal.SIGSTOP)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            stat = Path("/proc/%d/stat" % self.proc.pid).read_text()
            if stat.rsplit(")", 1)[1].split()[0] in ("T", "t"):
                return
            time.sleep(0.005)
        raise AssertionError("peer process %d did not stop" % self.proc.pid)

    def sigcont(self):
        self.signal(signal.SIGCONT)


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    import ha_util  # noqa: E402

    peer = ha_util.Peer(**json.loads(sys.argv[1]))
    peer.start()
    print("ready", flush=True)
    peer.join()
