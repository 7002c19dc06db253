#!/usr/bin/python3
"""Walk a running kamailio's shm heap (q_malloc with memory debugging:
kamailio -x qm, DBG_QM_MALLOC layout, x86_64) through /proc/PID/mem and
print, for the given allocation sites (function names), how many fragments
are in use and their sizes; and the free fragments.

What it shows: tm asks build_cell() for one fixed size per transaction
(8,336 B with Debian's 5.6.3), but a fragment in use can be bigger than what
was asked: q_malloc.c defines MEM_FRAG_AVOIDANCE and splits a free fragment
only if the rest is more than 16 KB or at least the size asked; otherwise
the whole fragment (up to twice the size asked) is handed out, and counted
as used (core.shmmem used/real_used, mod.stats) until it is freed.

Usage (as a user who may ptrace the process, e.g. its owner or root):
  bench/soak/qm_walk.py PID [function ...]   (default: build_cell
                                             sip_msg_shm_clone)
PID: any kamailio process (shm is shared), e.g. the main one.
"""

import collections
import struct
import sys

FRAG_HEAD = 56  # struct qm_frag: size, u, file, func, mname, line, check
FRAG_END = 48  # struct qm_frag_end: check1, check2, 2 reserved, size, prev


def shm_region(pid):
    """(start, end) of the largest shared mapping: kamailio's shm block"""
    best = None
    with open("/proc/%d/maps" % pid) as f:
        for ln in f:
            addr, perm = ln.split()[:2]
            lo, hi = (int(x, 16) for x in addr.split("-"))
            if perm[3] == "s" and (best is None
                                   or hi - lo > best[1] - best[0]):
                best = (lo, hi)
    return best


def walk(pid, funcs):
    lo, _ = shm_region(pid)
    mem = open("/proc/%d/mem" % pid, "rb", 0)

    def rd(addr, n):
        mem.seek(addr)
        return mem.read(n)

    names = {}

    def cstr(p):
        if p not in names:
            try:
                names[p] = rd(p, 64).split(b"\0")[0].decode(errors="replace")
            except OSError:
                names[p] = "?"
        return names[p]

    # struct qm_block: type, size, used, real_used, max_real_used, ffrags,
    # first_frag, last_frag_end
    (_, size, used, real_used, _, ffrags, first,
     last_end) = struct.unpack("<i4xQQQQQQQ", rd(lo, 64))
    heap = rd(first, last_end - first)
    sizes = {f: collections.Counter() for f in funcs}
    free = collections.Counter()
    off = n = 0
    while first + off < last_end:
        fsize, u, _, func, _, _, _ = struct.unpack_from("<7Q", heap, off)
        if u == 0:
            name = cstr(func)
            if name in sizes:
                sizes[name][fsize] += 1
        else:
            free[fsize] += 1
        off += FRAG_HEAD + fsize + FRAG_END
        n += 1
    return {"size": size, "used": used, "real_used": real_used,
            "ffrags": ffrags, "fragments": n, "sizes": sizes, "free": free}


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    pid = int(sys.argv[1])
    funcs = sys.argv[2:] or ["build_cell", "sip_msg_shm_clone"]
    w = walk(pid, funcs)
    print("shm %d B, used %d B, real_used %d B, %d fragments, %d free"
          % (w["size"], w["used"], w["real_used"], w["fragments"],
             sum(w["free"].values())))
    for fn, c in w["sizes"].items():
        cnt = sum(c.values())
        if not cnt:
            print("%s: none in use" % fn)
            continue
        tot = sum(k * v for k, v in c.items())
        small = min(c)
        print("%s: %d in use, %d B, %d B each on average; the smallest %d B "
              "(%d of them); %d B (%.1f%%) above the smallest"
              % (fn, cnt, tot, tot // cnt, small, c[small],
                 tot - small * cnt, 100.0 * (tot - small * cnt) / tot))
        top = sorted(c.items())
        print("  sizes (B: count): %s" % ", ".join(
            "%d: %d" % kv for kv in (top if len(top) <= 16
                                     else top[:8] + top[-8:])))
    big = sorted(w["free"].elements())[-3:]
    print("free fragments: %d B in all, the largest %s"
          % (sum(k * v for k, v in w["free"].items()), big))


if __name__ == "__main__":
    main()
