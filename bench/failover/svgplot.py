"""A small SVG plot of failover runs (no plotting library needed).

One panel per (config, variant): every call of the run as a point, x = when
its INVITE was sent relative to the failure of the primary, y = how long
the caller waited for the 200 (answered by the primary: grey, by the
backup: blue).  Failed calls are drawn in two bands above the plot: red
crosses for INVITEs that got a non-2xx final (or none), at the time the
INVITE was sent; orange crosses for BYEs that got no 200, at the time the
BYE was sent.  Points are merged per pixel so that the file stays small.
"""

from xml.sax.saxutils import escape

W, H = 430, 260            # one panel
ML, MR, MT, MB = 48, 12, 58, 34   # margins inside a panel
X0, X1 = -3.0, 10.0        # seconds around the failure
Y0, Y1 = 0.0, 6.0          # answer time, seconds
COLORS = {"primary": "#8c8c8c", "backup": "#1f6fd1", "inv_failed": "#d62728",
          "bye_failed": "#ff8c00"}


def _x(t):
    t = min(max(t, X0), X1)
    return ML + (t - X0) / (X1 - X0) * (W - ML - MR)


def _y(v):
    v = min(max(v, Y0), Y1)
    return H - MB - (v - Y0) / (Y1 - Y0) * (H - MT - MB)


def _text(x, y, s, size=11, anchor="start", color="#222", weight="normal"):
    return ('<text x="%.1f" y="%.1f" font-size="%d" text-anchor="%s" '
            'fill="%s" font-weight="%s">%s</text>'
            % (x, y, size, anchor, color, weight, escape(s)))


def _cross(x, y, color, r=2.5):
    return ('<path d="M%.1f %.1fl%.1f %.1fm0 %.1fl%.1f %.1f" stroke="%s" '
            'stroke-width="1.2"/>' % (x - r, y - r, 2 * r, 2 * r, -2 * r,
                                      -2 * r, 2 * r, color))


def panel(run, title):
    """SVG elements of one panel (coordinates local to the panel); calls
    sent outside [X0, X1] are left out"""
    out = ['<rect x="0" y="0" width="%d" height="%d" fill="white" '
           'stroke="#ccc"/>' % (W, H)]
    out.append(_text(ML, 14, title, 12, weight="bold"))
    out.append(_text(ML, 28, run["summary_line"], 10, color="#444"))
    # axes and grid
    for s in range(int(X0), int(X1) + 1):
        x = _x(s)
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>'
                   % (x, MT, x, H - MB, "#eee"))
        if s % 2 == 0 or s == 1:
            out.append(_text(x, H - MB + 13, "%d" % s, 10, "middle"))
    for v in range(int(Y0), int(Y1) + 1):
        y = _y(v)
        out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#eee"/>'
                   % (ML, y, W - MR, y))
        out.append(_text(ML - 5, y + 3, "%d s" % v if v < Y1 else
                         ">=%d" % v, 10, "end"))
    out.append('<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="#d62728" '
               'stroke-dasharray="4 3"/>' % (ML, _y(2), W - MR, _y(2)))
    for t, label in ((0, "failure"), (run["promote_after"], "promoted")):
        x = _x(t)
        out.append('<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="#555" '
                   'stroke-dasharray="2 2"/>' % (x, MT - 18, x, H - MB))
    out.append(_text(_x(0) - 2, MT - 19, "kill/stop", 9, "end", "#555"))
    out.append(_text(_x(run["promote_after"]) + 2, MT - 19, "backup promoted",
                     9, "start", "#555"))
    out.append(_text(ML - 5, MT - 10, "BYE", 9, "end", COLORS["bye_failed"]))
    out.append(_text(ML - 5, MT - 2, "INVITE", 9, "end", COLORS["inv_failed"]))
    out.append(_text((ML + W - MR) / 2, H - 4,
                     "INVITE sent, s after the failure (BYE for failed BYEs)",
                     10, "middle"))
    # points, merged per pixel, one path per kind (dots: zero-length
    # segments with round caps)
    seen = set()
    dots = {}      # color -> ["Mx yh0", ...]
    crosses = {}   # color -> [(x, y), ...]
    for c in run["calls"]:
        t_inv = c["inv_sent"]
        bye = c.get("bye_sent")
        if c["inv_code"] == 200 and c["bye_code"] != 200 and bye is not None \
                and X0 <= bye <= X1:
            key = ("b", round(_x(bye)))
            if key not in seen:
                seen.add(key)
                crosses.setdefault(COLORS["bye_failed"], []).append((key[1], MT - 13))
        if not X0 <= t_inv <= X1:
            continue
        if c["inv_code"] == 200:
            key = ("a", c["member"], round(_x(t_inv)), round(_y(c["answer_s"])))
            if key not in seen:
                seen.add(key)
                dots.setdefault(COLORS.get(c["member"], "#000"), []).append(
                    "M%d %dh0" % (key[2], key[3]))
        else:
            key = ("i", round(_x(t_inv)))
            if key not in seen:
                seen.add(key)
                crosses.setdefault(COLORS["inv_failed"], []).append((key[1], MT - 5))
    pts = []
    for color, segs in dots.items():
        pts.append('<path d="%s" stroke="%s" stroke-width="3.2" '
                   'stroke-linecap="round"/>' % ("".join(segs), color))
    for color, xys in crosses.items():
        pts.append('<path d="%s" stroke="%s" stroke-width="1.2"/>' % (
            "".join("M%d %dl5 5m0 -5l-5 5" % (x - 2.5, y - 2.5) for x, y in xys),
            color))
    return out + pts


def write(path, runs, rows, cols):
    """runs: {(row, col): run}; rows, cols: labels in order."""
    legend_h = 30
    width = W * len(cols)
    height = H * len(rows) + legend_h
    out = ['<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" '
           'font-family="sans-serif">' % (width, height),
           '<rect width="100%" height="100%" fill="white"/>']
    lx = 10
    for label, color, kind in (("answered by the primary", COLORS["primary"], "o"),
                               ("answered by the backup", COLORS["backup"], "o"),
                               ("INVITE failed", COLORS["inv_failed"], "x"),
                               ("BYE failed", COLORS["bye_failed"], "x"),
                               ("2 s", COLORS["inv_failed"], "-")):
        if kind == "o":
            out.append('<circle cx="%d" cy="15" r="3" fill="%s"/>' % (lx, color))
        elif kind == "x":
            out.append(_cross(lx, 15, color, 3.5))
        else:
            out.append('<line x1="%d" y1="15" x2="%d" y2="15" stroke="%s" '
                       'stroke-dasharray="4 3"/>' % (lx - 8, lx + 8, color))
        out.append(_text(lx + 8, 19, label, 11))
        lx += 30 + 7 * len(label)
    for i, r in enumerate(rows):
        for j, c in enumerate(cols):
            run = runs.get((r, c))
            if run is None:
                continue
            out.append('<g transform="translate(%d,%d)">' % (j * W, legend_h + i * H))
            out += panel(run, "%s, %s" % (r, c))
            out.append("</g>")
    out.append("</svg>")
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")
