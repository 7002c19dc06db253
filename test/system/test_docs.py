"""docs/architecture.md cannot drift from the code: every `file:name`
reference in it names an existing file that defines `name`, and every file
or directory it names in backquotes exists.  No kamailio is started.

A reference is a backquoted `path:name`; path is relative to the top of the
tree, or a bare file name that must be unique under modules/, test/, bench/
and etc/.  What "defines" means depends on the file: C (a top-level line
naming it: definition, prototype, array, typedef, #define), Python (def,
class or top-level assignment), cfg (a route block), make (a variable or
target).  Also runnable as a script: /usr/bin/python3 test_docs.py"""

import re
import sys
from pathlib import Path

TOP = Path(__file__).resolve().parents[2]
DOC = TOP / "docs" / "architecture.md"
SEARCH_DIRS = ("modules", "test", "bench", "etc")
SKIP_PARTS = {"bin", "__pycache__", ".cache", "build"}

SPAN = re.compile(r"`([^`]+)`")
REF = re.compile(r"^([\w./-]+\.(?:c|h|py|cfg|mk)|(?:[\w./-]+/)?Makefile)"
                 r":([A-Za-z_]\w*)$")
PATH = re.compile(r"^[\w./-]+(?:\.(?:c|h|py|cfg|mk|md|xml|svg)|/)$|"
                  r"^[\w.-]+/[\w./-]+$")


def _files_named(name):
    found = []
    for d in SEARCH_DIRS:
        for p in (TOP / d).rglob(name):
            if p.is_file() and not SKIP_PARTS & set(p.relative_to(TOP).parts):
                found.append(p)
    return found


def resolve(path):
    """(Path, None) or (None, why)"""
    if "/" in path:
        p = TOP / path
        return (p, None) if p.exists() else (None, "no such path")
    found = _files_named(path)
    if len(found) == 1:
        return found[0], None
    if not found:
        return None, "no such file under %s" % ", ".join(SEARCH_DIRS)
    return None, "ambiguous (%s): give its path" % ", ".join(
        str(p.relative_to(TOP)) for p in found)


def defines(path, name):
    text = path.read_text(errors="replace")
    n = re.escape(name)
    if path.suffix in (".c", ".h"):
        rx = (r"^(?:#define\s+%s\b|\}\s*%s\s*;|[A-Za-z_].*\b%s\b)"
              % (n, n, n))
    elif path.suffix == ".py":
        rx = r"^(?:\s*(?:def|class)\s+%s\b|%s\s*=)" % (n, n)
    elif path.suffix == ".cfg":
        rx = r"^\s*(?:route|failure_route|onreply_route|branch_route|" \
             r"event_route)\[%s\]" % n
    else:  # make
        rx = r"^%s\s*(?::=|\?=|\+=|=|:)" % n
    return re.search(rx, text, re.M) is not None


def check(markdown):
    """([problems], number of file:name references checked)"""
    problems, refs = [], 0
    for span in SPAN.findall(markdown):
        span = " ".join(span.split())
        m = REF.match(span)
        if m:
            refs += 1
            p, why = resolve(m.group(1))
            if p is None:
                problems.append("`%s`: %s" % (span, why))
            elif not defines(p, m.group(2)):
                problems.append("`%s`: %s not defined in %s" % (
                    span, m.group(2), p.relative_to(TOP)))
        elif PATH.match(span) and not any(c in span for c in "<>*$"):
            p, why = resolve(span)
            if p is None:
                problems.append("`%s`: %s" % (span, why))
    return problems, refs


def test_architecture_references_exist():
    problems, refs = check(DOC.read_text())
    assert not problems, "docs/architecture.md is out of date:\n" + \
        "\n".join(problems)
    # the page is a map through the code: if this drops, the parser lost
    # the references, not the page
    assert refs >= 150, refs


def test_checker_catches_drift():
    good = "`gha_route.c:select_pair` `harness.py:Kamailio` " \
           "`kamailio.cfg:HA_INITIAL` `test/unit/extra.mk:EXTRA_gts_table` " \
           "`modules/common` `docs/operator-guide.md`"
    assert check(good) == ([], 4)
    bad = ["`gha_route.c:no_such_function`",   # renamed function
           "`gha_nothing.c:select_pair`",      # moved file
           "`Makefile:src_of`",                # ambiguous file name
           "`harness.py:select_pair`",         # wrong file
           "`gha_route.c:set_dst_uri`",        # only called, never at top level
           "`kamailio.cfg:NO_SUCH_ROUTE`",
           "`docs/no-such-page.md`"]
    for text in bad:
        problems, _ = check(text)
        assert len(problems) == 1, (text, problems)


if __name__ == "__main__":
    found, n = check(DOC.read_text())
    print("\n".join(found) or "%d references, all found" % n)
    sys.exit(1 if found else 0)


MODULES = ("genesys_oos", "genesys_ha", "genesys_tlssticky")


def kemi_exports(module):
    """The KEMI names a module registers (its sr_kemi_t array)."""
    names = set()
    for src in (TOP / "modules" / module).glob("*.c"):
        text = src.read_text()
        names |= set(re.findall(r'str_init\("%s"\),\s*str_init\("(\w+)"\)'
                                % module, text))
    return names


def kemi_documented(module):
    """The KEMI names the module's docbook lists in its KEMI section (the
    first function of each list item)."""
    xml = (TOP / "modules" / module / "doc" / (module + "_admin.xml")).read_text()
    m = re.search(r'<section id="%s\.kemi">(.*?)</section>' % module, xml, re.S)
    if not m:
        return None
    return set(re.findall(r"<listitem><para><function>(\w+)\(", m.group(1)))


def test_kemi_exports_documented():
    """Each module's docbook lists exactly the KEMI functions it exports."""
    for module in MODULES:
        code, doc = kemi_exports(module), kemi_documented(module)
        assert code, module
        assert doc is not None, "%s_admin.xml has no KEMI section" % module
        assert code == doc, (module, "not documented: %s" % sorted(code - doc),
                             "documented, not exported: %s" % sorted(doc - code))


def pure_logic_files():
    """The files the architecture page's table lists as pure logic (its
    last column): libc only, cmocka-tested."""
    names = set()
    for line in DOC.read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 4 and cells[0].startswith("`modules/"):
            names |= set(re.findall(r"`(\w+\.c)`", cells[3]))
    return names


def test_glue_files_stay_small():
    """No module file over 600 lines except the pure logic files (issue
    15): glue that grows is split along its seams."""
    pure = pure_logic_files()
    assert "gha_pool.c" in pure, pure
    big = []
    for src in sorted((TOP / "modules").glob("*/*.c")):
        n = len(src.read_text().splitlines())
        if n > 600 and src.name not in pure:
            big.append("%s: %d lines" % (src.relative_to(TOP), n))
    assert not big, big
