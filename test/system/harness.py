"""Real-process test harness: kamailio with our modules, SIPp peers.

Every simulated host gets its own loopback address (127.x.y.z), so tests never
collide on ports and several tests (and several harness runs) can share the
machine.  Nothing here fakes SIP: the kamailio under test is Debian's
/usr/sbin/kamailio with the modules from the build tree, and every peer is a
real SIPp (or socket) process.
"""

import csv
import itertools
import json
import os
import re
import signal
import socket
import subprocess
import time
import warnings
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
MODULES_DIR = TOP / "modules"
SIPP_DIR = TOP / "test" / "sipp"
REFERENCE_CFG = TOP / "etc" / "kamailio.cfg"
KAMAILIO = os.environ.get("KAMAILIO", "/usr/sbin/kamailio")
KAMCMD = os.environ.get("KAMCMD", "/usr/sbin/kamcmd")
SIPP = os.environ.get("SIPP", "/usr/bin/sipp")
STOCK_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"

# 'make sanitize': the modules built with ASan+UBSan (make asan-modules) in
# <dir>/<m>/<m>.so (GENESYS_ASAN=<dir>: every kamailio of the run; or
# Kamailio(asan=<dir>)). Debian's kamailio is not instrumented, so the
# runtimes are preloaded. Reports go to stderr, i.e. the kamailio log (-E),
# where LOG_FAILURES catches them. No leak check: Kamailio's pkg and shm
# come from its own allocators, and every forked process would report the
# core's own start-up allocations at exit.
ASAN_DIR = os.environ.get("GENESYS_ASAN")
if ASAN_DIR:
    MODULES_DIR = Path(ASAN_DIR)
ASAN_PRELOAD = ("/usr/lib/x86_64-linux-gnu/libasan.so.8 "
                "/usr/lib/x86_64-linux-gnu/libubsan.so.1")


def asan_env():
    return dict(os.environ, LD_PRELOAD=ASAN_PRELOAD,
                ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:abort_on_error=0:"
                             "print_legend=0",
                UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=0")


# lines in a kamailio log that fail a test whatever it asserted
LOG_FAILURES = [
    re.compile(r"\bBUG\b"),
    re.compile(r"\bCRITICAL\b"),
    re.compile(r"ALERT:(?!.*exited normally, status=0)"),
    re.compile(r"segfault|Segmentation fault|core dumped"),
    re.compile(r"terminated by a signal|exited by a signal|exited by signal"),
    re.compile(r"could not find module|failed to load module|ERROR: bad config file"),
    re.compile(r"init_mod\(\): Error while initializing module"),
    re.compile(r"AddressSanitizer|runtime error:"),
]


# stock Kamailio's own shutdown noise: tcp_main logs CRITICAL when the
# sockets of workers that already exited reach EOF; ignored only in what the
# log says after the harness asked kamailio to stop
SHUTDOWN_NOISE = [
    re.compile(r"CRITICAL: <core> \[core/pass_fd\.c:\d+\]: receive_fd\(\): EOF on \d+"),
]


class HarnessError(AssertionError):
    """A process under test misbehaved; the message carries its output."""


class RpcError(HarnessError):
    """A JSON-RPC error answer: .code and .message as Kamailio sent them."""

    def __init__(self, method, params, code, message):
        super().__init__("%s %s failed: %s - %s"
                         % (method, " ".join(map(str, params)), code, message))
        self.code = code
        self.message = message


# Appended to every cfg the harness writes: Kamailio's jsonrpcs module on a
# unix datagram socket in the workdir, for Kamailio.rpc_json.  A cfg that
# loads jsonrpcs itself (the reference one does, for HTTP) keeps its load
# (every loadmodule defines MOD_<name>) and, with xhttp loaded, its HTTP
# transport: the last modparam wins, transport is a bit mask (1 HTTP,
# 2 FIFO, 4 datagram).
JSONRPC_CFG = """
#!ifndef MOD_jsonrpcs
loadmodule "jsonrpcs.so"
modparam("jsonrpcs", "transport", 4)
#!else
#!ifdef MOD_xhttp
modparam("jsonrpcs", "transport", 5)
#!else
modparam("jsonrpcs", "transport", 4)
#!endif
#!endif
modparam("jsonrpcs", "dgram_socket", "%s")
"""


_addr_counter = itertools.count(1)
# a per-run second octet keeps concurrent runs on one machine apart
_octet2 = 20 + os.getpid() % 200


def next_address():
    """A fresh loopback address for one simulated host."""
    n = next(_addr_counter)
    return "127.%d.%d.%d" % (_octet2, n // 250, n % 250 + 1)


def tail(path, lines=40):
    try:
        text = Path(path).read_text(errors="replace").splitlines()
    except FileNotFoundError:
        return "(no output)"
    return "\n".join(text[-lines:])


class Kamailio:
    """One kamailio -DD -E process with its cfg, log and ctl socket in `workdir`."""

    def __init__(self, workdir, cfg_text=None, cfg_path=None, defines=None,
                 address=None, port=5060, mem_debug=True, extra_args=None,
                 asan=ASAN_DIR):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.address = address or next_address()
        self.port = port
        self.ctl = self.workdir / "ctl.sock"
        self.log = self.workdir / "kamailio.log"
        self.cfg = self.workdir / "kamailio.cfg"
        self.jsonrpc_sock = self.workdir / "jrpc.sock"
        if cfg_text is None:
            cfg_text = Path(cfg_path or REFERENCE_CFG).read_text()
        self.cfg.write_text(cfg_text + JSONRPC_CFG % self.jsonrpc_sock)
        self._rpc_ids = itertools.count(1)
        self.defines = {
            "LISTEN_UDP": "udp:%s:%d" % (self.address, port),
            "LISTEN_TCP": "tcp:%s:%d" % (self.address, port),
            "CTL_SOCK": '"unix:%s"' % self.ctl,
            "CHILDREN": "2",
        }
        self.defines.update(defines or {})
        self.mem_debug = mem_debug
        self.extra_args = list(extra_args or [])
        # the build tree first: an installed kamailio-genesys-modules
        # package (same module names in STOCK_MODULES) must never shadow it
        self.module_path = "%s:%s" % (asan or MODULES_DIR, STOCK_MODULES)
        self.env = asan_env() if asan else None
        self.proc = None
        self._logf = None
        self._stop_offset = None
        self._hang = None

    @property
    def uri(self):
        return "sip:%s:%d" % (self.address, self.port)

    def argv(self, check_only=False):
        argv = [KAMAILIO, "-f", str(self.cfg),
                "-L", self.module_path,
                "-Y", str(self.workdir), "-m", "64", "-M", "8"]
        if check_only:
            argv.append("-c")
        else:
            argv += ["-DD", "-E"]
        if self.mem_debug:
            # quick-malloc with Kamailio's memory debugging (DBG_SR_MEMORY):
            # catches double frees and overruns and reports leaks at exit
            argv += ["-x", "qm", "-X", "qm"]
        for k, v in self.defines.items():
            argv += ["-A", k if v is None else "%s=%s" % (k, v)]
        return argv + self.extra_args

    def check_config(self):
        """kamailio -c: returns (ok, output)."""
        p = subprocess.run(self.argv(check_only=True), capture_output=True,
                           text=True, timeout=30, env=self.env)
        return p.returncode == 0, p.stdout + p.stderr

    def start(self, timeout=15.0):
        self._logf = open(self.log, "wb")
        self.proc = subprocess.Popen(self.argv(), stdout=self._logf,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     cwd=str(self.workdir),
                                     env=self.env,
                                     start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                # the first config error is the one that matters: a
                # missing module makes every later use of it fail too
                raise HarnessError(
                    "kamailio exited at start-up with code %s:\n%s"
                    % (self.proc.returncode, tail(self.log, 100)))
            if self.ctl.exists():
                r = self.rpc_raw("core.uptime")
                if r.returncode == 0:
                    return self
            time.sleep(0.05)
        self.stop(check=False)
        raise HarnessError("kamailio did not answer kamcmd within %.0fs:\n%s"
                           % (timeout, tail(self.log)))

    def mapped_modules(self):
        """{name: path} of every shared object the running main process has
        mapped (what was really loaded, whatever -L said)."""
        found = {}
        for line in Path("/proc/%d/maps" % self.proc.pid).read_text().splitlines():
            fields = line.split(None, 5)
            if len(fields) == 6 and fields[5].endswith(".so"):
                found[Path(fields[5]).stem] = fields[5]
        return found

    def rpc_raw(self, *args, timeout=10):
        return subprocess.run([KAMCMD, "-s", "unix:%s" % self.ctl]
                              + [str(a) for a in args],
                              capture_output=True, text=True, timeout=timeout)

    def rpc(self, *args, timeout=10):
        """kamcmd <args>; returns stdout, raises on an RPC error."""
        r = self.rpc_raw(*args, timeout=timeout)
        if r.returncode != 0 or r.stdout.startswith("error:"):
            raise HarnessError("kamcmd %s failed: %s%s"
                               % (" ".join(map(str, args)), r.stdout, r.stderr))
        return r.stdout

    def rpc_json(self, method, *params, timeout=10):
        """One JSON-RPC call over jsonrpcs' datagram socket: the decoded
        result (dicts, lists, numbers and strings as the RPC added them);
        raises RpcError with Kamailio's code and message on an error.
        Two limits of jsonrpcs, where kamcmd (rpc, rpc_raw) stays: it cuts
        a fault's message to 127 characters (kamcmd shows the 200 that
        kg_rpc_fault keeps), and of an RPC that adds several values
        without RET_ARRAY (cfg.help) it answers only the last one."""
        req_id = next(self._rpc_ids)
        req = json.dumps({"jsonrpc": "2.0", "method": method,
                          "params": list(params), "id": req_id})
        s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            s.bind("")          # an abstract address of its own (autobind)
            s.settimeout(timeout)
            s.sendto(req.encode(), str(self.jsonrpc_sock))
            while True:
                try:
                    data = s.recv(1 << 20)
                except socket.timeout:
                    raise HarnessError("%s: no JSON-RPC answer within %.0fs"
                                       % (method, timeout)) from None
                ans = json.loads(data)
                if ans.get("id") == req_id:
                    break
        finally:
            s.close()
        if "error" in ans:
            err = ans["error"]
            raise RpcError(method, params, err.get("code"), err.get("message"))
        return ans.get("result")

    def rpc_fault(self, method, *params, timeout=10):
        """A JSON-RPC call that must fail: returns its RpcError (.code,
        .message); raises HarnessError when it succeeds."""
        try:
            res = self.rpc_json(method, *params, timeout=timeout)
        except RpcError as e:
            return e
        raise HarnessError("%s %s succeeded where it must fail: %r"
                           % (method, " ".join(map(str, params)), res))

    def statistics(self, group):
        """stats.get_statistics <group> ("genesys_ha:"): {name: value}, the
        names without their group."""
        res = self.rpc_json("stats.get_statistics", group)
        out = {}
        for line in [res] if isinstance(res, str) else res:
            name, val = line.split(" = ", 1)
            out[name.split(":", 1)[-1]] = int(val)
        return out

    def processes(self):
        """core.psx: [(pid, description)] of every kamailio process"""
        return [(p["PID"], p["DSC"]) for p in self.rpc_json("core.psx")]

    def log_text(self):
        return self.log.read_text(errors="replace")

    def wait_log(self, pattern, timeout=10.0, start=0):
        """Wait until `pattern` (regex) appears in the log; returns the match."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        while True:
            m = rx.search(self.log_text(), start)
            if m:
                return m
            if time.monotonic() > deadline:
                raise HarnessError("log line /%s/ not seen within %.1fs:\n%s"
                                   % (pattern, timeout, tail(self.log)))
            time.sleep(0.05)

    def failures(self):
        text = self.log_text()
        cut = len(text) if self._stop_offset is None else self._stop_offset
        bad = [ln for ln in text[:cut].splitlines()
               if any(rx.search(ln) for rx in LOG_FAILURES)]
        bad += [ln for ln in text[cut:].splitlines()
                if any(rx.search(ln) for rx in LOG_FAILURES)
                and not any(rx.search(ln) for rx in SHUTDOWN_NOISE)]
        return bad

    def stop(self, check=True):
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._stop_offset = len(self.log_text())
            # SIGTERM to the main process only, as kamailio expects: it
            # stops its children itself (signalling the whole group races
            # its SIGCHLD handling against its SIGTERM handling)
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._hang = self._describe_hang()
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        rc = self.proc.returncode
        self.proc = None
        if self._logf:
            self._logf.close()
            self._logf = None
        if check:
            if self._tls_shutdown_race(rc) or self._shutdown_lock_race(rc):
                return
            bad = self.failures()
            if bad:
                raise HarnessError("kamailio log shows failures:\n%s\n--- log tail ---\n%s"
                                   % ("\n".join(bad[:20]), tail(self.log)))
            if rc not in (0, -signal.SIGTERM):
                raise HarnessError("kamailio exited with code %s:\n%s%s"
                                   % (rc, tail(self.log),
                                      self._hang_text()))

    def _describe_hang(self):
        """The main process did not end within 15 s of its SIGTERM: which
        children are left and where the main process is (gdb backtrace),
        for the error or the excuse below."""
        pid = self.proc.pid
        kids = []
        for d in Path("/proc").iterdir():
            if not d.name.isdigit():
                continue
            try:
                st = (d / "stat").read_text()
            except OSError:
                continue
            if int(st.rsplit(")", 1)[1].split()[1]) == pid:
                kids.append(int(d.name))
        bt = ""
        try:
            bt = subprocess.run(["gdb", "-p", str(pid), "-batch", "-nx",
                                 "-ex", "bt 25"], capture_output=True,
                                text=True, timeout=40).stdout
        except (OSError, subprocess.SubprocessError) as e:
            bt = "(no backtrace: %s)" % e
        return {"children": kids,
                "bt": [ln for ln in bt.splitlines() if ln.startswith("#")]}

    def _hang_text(self):
        h = getattr(self, "_hang", None)
        if not h:
            return ""
        return ("\n--- main process after 15 s: children left %s, "
                "backtrace ---\n%s" % (h["children"] or "none",
                                        "\n".join(h["bt"]) or "(none)"))

    def _shutdown_lock_race(self, rc):
        """Stock Kamailio's shutdown lets children _exit() from their
        SIGTERM handler wherever they are, also inside a locked section;
        the main process, cleaning up after all children are gone
        (cleanup() -> destroy_modules()), then waits for that lock forever
        and the harness kills it.  Excused only when all of it holds: stop
        was requested, the goodbye line is in the log, no child was left,
        the main process is inside Kamailio's cleanup blocked on a lock
        (futex) with none of our modules on its stack, and everything
        logged before the stop is clean."""
        h = getattr(self, "_hang", None)
        if rc != -signal.SIGKILL or not h or h["children"]:
            return False
        text = self.log_text()
        if self._stop_offset is None or "Thank you for flying kamailio" \
                not in text[self._stop_offset:]:
            return False
        bt = "\n".join(h["bt"])
        if not re.search(r"\b(cleanup|destroy_modules|shutdown_children)\b",
                         bt) or not re.search(r"futex|lock|syscall|sched_yield", bt) \
                or "genesys_" in bt:
            return False
        if any(rx.search(ln) for ln in text[:self._stop_offset].splitlines()
               for rx in LOG_FAILURES):
            return False
        warnings.warn("kamailio %s: stock Kamailio's shutdown lock race (a "
                      "child exited holding a lock the main process needs "
                      "in cleanup); main process stack:\n%s"
                      % (self.workdir, bt))
        return True

    def _tls_shutdown_race(self, rc):
        """Stock Kamailio 5.6.3's shutdown race (docs/tls.md, "Stopping
        under load"): children _exit() in the middle of an shm_free of the
        tls module when the main process signals them, and the main process,
        freeing what is left after "Thank you for flying kamailio", crashes
        (SIGSEGV, abort) or loops until the harness kills it.  Excused only
        when all of it holds: stop was requested, the tls module is loaded,
        the main process had finished serving (its goodbye line is in the
        log) and everything logged before the stop is clean."""
        if self._stop_offset is None or rc not in (
                -signal.SIGSEGV, -signal.SIGABRT, -signal.SIGKILL):
            return False
        text = self.log_text()
        after = text[self._stop_offset:]
        if "Thank you for flying kamailio" not in after:
            return False
        if not re.search(r"\btls \[tls_", text[:self._stop_offset]):
            return False
        before = [ln for ln in text[:self._stop_offset].splitlines()
                  if any(rx.search(ln) for rx in LOG_FAILURES)]
        if before:
            return False
        warnings.warn("kamailio %s hit stock Kamailio's TLS shutdown race "
                      "after its stop (exit %s); see docs/tls.md"
                      % (self.workdir, rc))
        return True


class SippResult:
    # attributes only (the shape of Kamailio.__init__'s end): nothing to share
    def __init__(self, rc, stats, messages, errors, screen):
        self.rc = rc
        self.stats = stats
        self.messages = messages
        self.errors = errors
        self.screen = screen

    @property
    def successful(self):
        return int(self.stats.get("SuccessfulCall(C)", 0))

    @property
    def failed(self):
        return int(self.stats.get("FailedCall(C)", 0))

    def received(self, first_line_prefix):
        """SIP messages SIPp received whose first line starts with the prefix."""
        return [m for m in self.messages
                if m["dir"] == "received" and m["text"].startswith(first_line_prefix)]

    def sent(self, first_line_prefix):
        return [m for m in self.messages
                if m["dir"] == "sent" and m["text"].startswith(first_line_prefix)]

    def __repr__(self):
        return "SippResult(rc=%s, ok=%s, failed=%s)" % (self.rc, self.successful, self.failed)


_MSG_HDR = re.compile(r"^-+ [\d\-:.\s]+\n(UDP|TCP|TLS|SCTP) message (sent|received) "
                      r"(?:\(\d+ bytes\)|\[\d+\] bytes ?):\n", re.M)


def parse_message_trace(text):
    """Split a SIPp -trace_msg file into [{'dir','transport','text'}]."""
    out = []
    parts = _MSG_HDR.split(text)
    # parts: [pre, transport, dir, body, transport, dir, body, ...]
    for i in range(1, len(parts) - 2, 3):
        out.append({"transport": parts[i], "dir": parts[i + 1],
                    "text": parts[i + 2].strip("\n")})
    return out


class Sipp:
    """One SIPp process (UAC or UAS) on its own address."""

    def __init__(self, workdir, scenario, name, address=None, port=5060,
                 remote=None, transport="u1", calls=1, extra_args=None,
                 service=None, timeout=30, trace=True):
        self.workdir = Path(workdir)
        self.name = name
        self.address = address or next_address()
        self.port = port
        scen = Path(scenario)
        if not scen.is_absolute() and not scen.exists():
            scen = SIPP_DIR / scen
        self.scenario = scen
        self.remote = remote
        self.transport = transport
        self.calls = calls
        self.extra_args = list(extra_args or [])
        self.service = service
        self.timeout = timeout
        self.trace = trace
        self.proc = None
        base = self.workdir / ("sipp-" + name)
        self.msg_file = Path(str(base) + "-messages.log")
        self.err_file = Path(str(base) + "-errors.log")
        self.stat_file = Path(str(base) + "-stats.csv")
        self.screen_file = Path(str(base) + "-screen.log")
        self.out_file = Path(str(base) + "-stdout.log")

    @property
    def uri(self):
        return "sip:%s:%d" % (self.address, self.port)

    def argv(self):
        argv = [SIPP, "-sf", str(self.scenario), "-i", self.address,
                "-p", str(self.port), "-t", self.transport,
                "-m", str(self.calls), "-nostdin",
                "-timeout", "%ds" % self.timeout, "-timeout_error",
                "-trace_err", "-error_file", str(self.err_file),
                "-trace_stat", "-stf", str(self.stat_file), "-fd", "1",
                "-trace_screen", "-screen_file", str(self.screen_file)]
        if self.trace:
            argv += ["-trace_msg", "-message_file", str(self.msg_file)]
        if self.service:
            argv += ["-s", self.service]
        argv += self.extra_args
        if self.remote:
            argv.append(self.remote)
        return argv

    def start(self):
        self._out = open(self.out_file, "wb")
        self.proc = subprocess.Popen(self.argv(), stdout=self._out,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     cwd=str(self.workdir),
                                     start_new_session=True)
        # a UAS must be bound (TCP: listening) before anyone sends to it
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                break
            if _bound(self.address, self.port, self.transport):
                return self
            time.sleep(0.02)
        if self.remote is None:
            # a SIP Server that is not there makes a test fail far from
            # here ("member down"): say it where it happens
            state = ("exited with %s" % self.proc.returncode
                     if self.proc.poll() is not None else "not bound in 10 s")
            raise RuntimeError("SIPp %s on %s:%d/%s %s:\n%s"
                               % (self.name, self.address, self.port,
                                  self.transport, state,
                                  tail(self.out_file, 20)))
        return self

    def wait(self, timeout=None):
        try:
            rc = self.proc.wait(timeout=timeout or self.timeout + 10)
        except subprocess.TimeoutExpired:
            self.kill()
            rc = self.proc.returncode
        self._out.close()
        return self.result(rc)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def result(self, rc):
        stats = {}
        if self.stat_file.exists():
            rows = list(csv.reader(self.stat_file.read_text().splitlines(),
                                   delimiter=";"))
            if len(rows) >= 2:
                stats = dict(zip(rows[0], rows[-1]))
        msgs = parse_message_trace(self.msg_file.read_text(errors="replace")) \
            if self.msg_file.exists() else []
        errors = self.err_file.read_text(errors="replace") if self.err_file.exists() else ""
        screen = tail(self.out_file, 60)
        return SippResult(rc, stats, msgs, errors, screen)

    def run(self):
        return self.start().wait()


def _tcp_listening(address, port):
    """True when an IPv4 TCP socket listens on address:port (/proc/net/tcp:
    a socket that is bound but not yet listening refuses connections)."""
    want = "%s:%04X" % ("".join("%02X" % int(b) for b in
                                reversed(address.split("."))), port)
    try:
        with open("/proc/net/tcp") as f:
            for line in f:
                cols = line.split()
                if len(cols) > 3 and cols[1] == want and cols[3] == "0A":
                    return True
    except OSError:
        return None
    return False


def _bound(address, port, transport):
    """True when something listens on address:port (UDP or TCP)."""
    stream = transport[:1] in ("t", "l")   # TCP or TLS
    if stream and ":" not in address:
        up = _tcp_listening(address, port)
        if up is not None:
            return up
    kind = socket.SOCK_STREAM if stream else socket.SOCK_DGRAM
    s = socket.socket(socket.AF_INET, kind)
    try:
        s.bind((address, port))
    except OSError:
        return True
    finally:
        s.close()
    return False
