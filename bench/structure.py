#!/usr/bin/env python3
"""Measure the structure of d1-backup's library crates; print Markdown.

Usage: python3 bench/structure.py ROOT      (ROOT = a checkout of the repository)

Python 3.11, stdlib only, read-only, deterministic (files sorted, ties broken by name).

Counting rules (the same for "before" and "after"):
- Files: `.rs` files under `crates/<crate>/src` (never `tests/`, `benches/`, `examples/`).
  A file whose path under `src/` has a segment starting with `testing` is *test support*: it is
  listed apart and left out of every ranking/count except where said.  Lines = physical lines.
- Lexing: every file is scanned once by a small Rust lexer that knows line and nested block
  comments, strings, byte/C strings, raw strings (`r#"…"#`, `br"…"`), char/byte literals and
  lifetimes.  Brace matching, `fn`/`impl`/`use` detection and the Result regex run on a copy in
  which comments and literals are blanked (newlines kept), so braces or `fn` inside them never
  count.  The CLI-flag search looks only inside string literals; the dump-format patterns look at
  code with comments removed but literals kept.
- Test code: bodies of `#[cfg(test)] mod x { … }` are excluded from everything except the
  "test modules" line (other `#[cfg(test)]` items are not detected).
- Functions: every `fn name` with a body; lines from the line of `fn` to the line of the closing
  brace, inclusive (attributes and doc comments not counted).  Nested fns and closures count
  inside their outer fn; nested fns are also listed themselves.  Methods are shown `Type::name`.
- Modules: one module = one file; `foo/bar.rs` is `foo::bar`, `foo/mod.rs` is `foo`; `#[path]`
  declarations are honoured as aliases (before the refactor `crate::vtab` is `sqlite/vtab.rs`).
- Import graph: an edge A -> B when A's non-test code names B through a `use` tree (with
  `crate::`, `self::`, `super::` or a declared child module first; `{…}` groups expanded) or
  through an inline path `crate::…`, `super::…`, `self::…`, `child::…`.  A path is followed
  through modules and through `use`/`pub use` re-exports (so `crate::Config` is an edge to
  `config`, not to `lib`).  `lib` is not a node (it declares every module); `mod` declarations
  are not edges.  SCCs by Tarjan.
- `Engine`: inherent `impl Engine` blocks (trait impls listed apart); methods = fns directly in
  those blocks; "pub" = any `pub`/`pub(…)`, shown split as `pub` and `pub(crate/super)`.
- `Result<_, String>`: each `Result<…>` (balanced angle brackets) whose last top-level argument
  is `String`, in non-test code; reported in fn signatures and elsewhere (aliases, fields, closures).
- CLI flags: a string literal (non-test code, library crates) containing one of FLAGS as a whole
  flag (`--only` but not `--only-x`); one line per literal.
- Dump-format rules (backup-core, non-test code, test support listed apart): identifier quoting
  = `.replace('"', "\\"\\"")`, `.replace("\\"", "\\"\\"")` or a `split_inclusive('"')` loop;
  internal tables = `starts_with("_cf_")` (a copy is one enclosing function; `sqlite_` checks are
  shown with it); first line = the literal `PRAGMA defer_foreign_keys=TRUE;` (a literal that is
  exactly this statement, or starts with it followed by `\\n`).

Compared with the figures in issue 12 (measured at e5723e3): `Result<_, String>` 35 here vs
"about 37" there -- a line grep `Result<[^;{]*, String>` finds 37 because it also counts two in
`restore/statements.rs`'s `#[cfg(test)] mod tests`; CLI-flag literals 12 here vs 11 -- the line grep
misses `live.rs:811`, a literal continued with `\\` whose `--force` is on the next line; `Engine`
38 fns here vs 37 methods -- the 37 take `self`, the 38th is `Engine::builder` (associated fn).
"""
import bisect
import os
import re
import sys
from collections import defaultdict

LIB_CRATES = ["backup-core", "d1-export", "r2-sink"]
FLAGS = ["--force", "--only", "--config", "--yes", "--date", "--to-sqlite", "--to-d1",
         "--dry-run", "--against-live", "--verify", "--json", "--account"]
FLAG_RE = re.compile(r"(?<![\w-])(" + "|".join(re.escape(f) for f in FLAGS) + r")(?![\w-])")
IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


class Src:
    """One lexed file: `mask` (comments+literals blanked), `nocom` (comments blanked), literals."""

    def __init__(self, crate, rel, text):
        self.crate, self.rel, self.text = crate, rel, text
        self.lines = text.count("\n") + (0 if text.endswith("\n") or not text else 1)
        self.starts = [0] + [m.end() for m in re.finditer("\n", text)]
        self.support = any(p.startswith("testing") for p in rel.split("/"))
        self.lex()
        self.tests = test_regions(self.mask)

    def line(self, off):
        return bisect.bisect_right(self.starts, off)

    def in_tests(self, off):
        return any(a <= off <= b for a, b in self.tests)

    def lex(self):
        t, n, i = self.text, len(self.text), 0
        mask, nocom = list(t), list(t)
        self.strings = []  # (offset, literal source text)

        def blank(buf, a, b):
            for k in range(a, b):
                if buf[k] != "\n":
                    buf[k] = " "

        def str_end(j):  # j just after the opening quote of a normal string
            while j < n and t[j] != '"':
                j += 2 if t[j] == "\\" else 1
            return min(j + 1, n)

        while i < n:
            c = t[i]
            if c == "/" and t.startswith("//", i):
                j = t.find("\n", i)
                j = n if j < 0 else j
                blank(mask, i, j), blank(nocom, i, j)
                i = j
            elif c == "/" and t.startswith("/*", i):
                depth, j = 1, i + 2
                while j < n and depth:
                    if t.startswith("/*", j):
                        depth, j = depth + 1, j + 2
                    elif t.startswith("*/", j):
                        depth, j = depth - 1, j + 2
                    else:
                        j += 1
                blank(mask, i, j), blank(nocom, i, j)
                i = j
            elif c == '"':
                j = str_end(i + 1)
                self.strings.append((i, t[i:j]))
                blank(mask, i, j)
                i = j
            elif c == "'":
                if i + 1 < n and t[i + 1] == "\\":
                    j = i + 3
                    while j < n and t[j] != "'":
                        j += 1
                    blank(mask, i, j + 1)
                    i = j + 1
                elif i + 2 < n and t[i + 2] == "'":
                    blank(mask, i, i + 3)
                    i += 3
                else:  # lifetime or label
                    m = IDENT.match(t, i + 1)
                    i = m.end() if m else i + 1
            elif c.isalpha() or c == "_" or c.isdigit():
                m = re.compile(r"\w+").match(t, i)
                word, j = m.group(), m.end()
                if word in ("r", "br", "cr") and j < n and t[j] in '#"':
                    k = j
                    while k < n and t[k] == "#":
                        k += 1
                    if k < n and t[k] == '"':
                        close = '"' + "#" * (k - j)
                        e = t.find(close, k + 1)
                        e = n if e < 0 else e + len(close)
                        self.strings.append((i, t[i:e]))
                        blank(mask, i, e)
                        i = e
                        continue
                if word in ("b", "c") and j < n and t[j] == '"':
                    e = str_end(j + 1)
                    self.strings.append((i, t[i:e]))
                    blank(mask, i, e)
                    i = e
                    continue
                if word == "b" and j < n and t[j] == "'":
                    e = j + 1
                    while e < n and t[e] != "'":
                        e += 2 if t[e] == "\\" else 1
                    blank(mask, i, e + 1)
                    i = e + 1
                    continue
                i = j
            else:
                i += 1
        self.mask, self.nocom = "".join(mask), "".join(nocom)


def match_brace(mask, i):
    """Index of the brace closing the one at i (mask has no literals or comments)."""
    depth = 0
    for j in range(i, len(mask)):
        if mask[j] == "{":
            depth += 1
        elif mask[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(mask) - 1


TEST_MOD = re.compile(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+\w+\s*\{")


def test_regions(mask):
    return [(m.start(), match_brace(mask, m.end() - 1)) for m in TEST_MOD.finditer(mask)]


def body_start(mask, j):
    """From j (after a signature start), the index of the body's `{`, or None for `;`."""
    depth = 0
    for k in range(j, len(mask)):
        ch = mask[k]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth -= 1
        elif depth == 0 and ch == "{":
            return k
        elif depth == 0 and ch == ";":
            return None
    return None


def impl_type(header):
    h = header.replace("->", "  ").strip()
    if h.startswith("<"):
        depth = 0
        for k, ch in enumerate(h):
            depth += (ch == "<") - (ch == ">")
            if depth == 0:
                h = h[k + 1:]
                break
    h = re.split(r"\bwhere\b", h)[0]
    trait = None
    parts, depth, cur = [], 0, ""
    for tok in re.split(r"(\s+for\s+|<|>)", h):
        if tok == "<":
            depth += 1
        elif tok == ">":
            depth -= 1
        if tok and re.fullmatch(r"\s+for\s+", tok) and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += tok
    parts.append(cur)
    if len(parts) > 1:
        trait, h = parts[0].strip(), parts[1]
    h = re.sub(r"^[&\s]*(?:mut\s+|dyn\s+)?", "", h.strip())
    name = re.split(r"[<\s]", h.strip())[0].split("::")[-1]
    return name, trait


def items(src):
    """Functions and impl blocks of a file (outside test modules)."""
    mask = src.mask
    impls = []
    for m in re.finditer(r"\bimpl\b", mask):
        k = m.start() - 1
        while k >= 0 and mask[k].isspace():
            k -= 1
        prev = re.search(r"(\w+)$", mask[max(0, k - 10):k + 1])
        if not (k < 0 or mask[k] in ";{}]" or (prev and prev.group(1) in ("unsafe", "default"))):
            continue
        b = body_start(mask, m.end())
        if b is None or src.in_tests(m.start()):
            continue
        name, trait = impl_type(mask[m.end():b])
        impls.append(dict(type=name, trait=trait, start=m.start(), open=b,
                          end=match_brace(mask, b), line=src.line(m.start())))
    fns = []
    for m in re.finditer(r"\bfn\s+(?:r#)?(\w+)", mask):
        b = body_start(mask, m.end())
        if b is None:
            continue
        e = match_brace(mask, b)
        k = max(mask.rfind(ch, 0, m.start()) for ch in ";{}]")
        vis = re.search(r"\bpub\b(\s*\([^)]*\))?", mask[k + 1:m.start()])
        recv = re.match(r"[^(]*\(\s*(?:&\s*(?:'\w+\s+)?)?(?:mut\s+)?self\b", mask[m.end():b])
        fns.append(dict(name=m.group(1), start=m.start(), open=b, end=e, recv=bool(recv),
                        line=src.line(m.start()), lines=src.line(e) - src.line(m.start()) + 1,
                        test=src.in_tests(m.start()),
                        vis=None if not vis else ("pub" if not vis.group(1) else "pub(..)")))
    for f in fns:
        outer_fn = max((g["open"] for g in fns if g["open"] < f["start"] < g["end"]), default=-1)
        owner = [i for i in impls if i["open"] < f["start"] < i["end"] and i["open"] > outer_fn]
        f["impl"] = max(owner, key=lambda i: i["open"]) if owner else None
        f["qual"] = (f["impl"]["type"] + "::" if f["impl"] else "") + f["name"]
    return fns, impls


def load(root, crate):
    base = os.path.join(root, "crates", crate, "src")
    out = []
    for d, dirs, files in os.walk(base):
        dirs[:] = sorted(x for x in dirs if x != "tests")
        for f in sorted(files):
            if f.endswith(".rs"):
                p = os.path.join(d, f)
                with open(p, encoding="utf-8") as fh:
                    out.append(Src(crate, os.path.relpath(p, base).replace(os.sep, "/"), fh.read()))
    return sorted(out, key=lambda s: s.rel)


def modname(rel):
    p = rel[:-3].split("/")
    if p[-1] in ("mod", "lib") and (len(p) > 1 or p[-1] == "lib"):
        p = p[:-1]
    return "::".join(p)


def first_sentence(text):
    doc = []
    for ln in text.splitlines():
        s = ln.strip()
        if not doc and not s:
            continue
        if not s.startswith("//!"):
            break
        body = s[3:].strip()
        if not body:
            if doc:
                break
            continue
        doc.append(body)
    para = " ".join(doc)
    m = re.match(r"(.+?[.!?:])(?=\s+[A-Z`(\[]|\s*$)", para)
    s = m.group(1) if m else para
    return (s[:157] + "...") if len(s) > 160 else s


# ---------------------------------------------------------------- use trees and the import graph

def use_paths(tree):
    """Expand a use tree ("crate::{a, b::{c as d}}") into a list of segment lists."""
    toks = re.findall(r"::|\{|\}|,|\*|\w+", tree)
    pos = 0

    def parse(prefix):
        nonlocal pos
        out, path = [], list(prefix)
        while pos < len(toks):
            t = toks[pos]
            if t == "{":
                pos += 1
                while pos < len(toks) and toks[pos] != "}":
                    out += parse(path)
                    if pos < len(toks) and toks[pos] == ",":
                        pos += 1
                pos += 1
                return out
            if t in (",", "}"):
                break
            if t == "as":
                pos += 2
                continue
            if t != "::":
                path.append(t)
            pos += 1
        out.append([s for s in path if s != "self"] if path[-1:] == ["self"] else path)
        return out

    return [p for p in parse([]) if p]


USE = re.compile(r"\buse\s+([^;]+);")


class Graph:
    def __init__(self, srcs):
        self.by_mod = {modname(s.rel): s for s in srcs}
        self.alias = {m: m for m in self.by_mod}
        for s in srcs:
            here = modname(s.rel)
            for m in re.finditer(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)', s.nocom):
                d = os.path.dirname(s.rel) if s.rel.endswith(("mod.rs", "lib.rs")) else s.rel[:-3]
                target = os.path.normpath(os.path.join(d, m.group(1))).replace(os.sep, "/")
                if modname(target) in self.by_mod:
                    self.alias["::".join(x for x in (here, m.group(2)) if x)] = modname(target)
        self.exports = defaultdict(dict)  # module -> name -> segments (relative to module)
        self.code = {}
        for here, s in self.by_mod.items():
            code = "".join(" " if s.in_tests(k) and ch != "\n" else ch for k, ch in enumerate(s.mask))
            self.code[here] = code
            for m in USE.finditer(code):
                for p in use_paths(m.group(1)):
                    if p[-1] != "*":
                        self.exports[here][p[-1]] = p

    def child(self, mod, name):
        return self.alias.get("::".join(x for x in (mod, name) if x))

    def resolve(self, segs, cur, depth=0):
        if not segs or depth > 8:
            return None
        first, rest = segs[0], segs[1:]
        if first == "crate":
            m = ""
        elif first == "self":
            m = cur
        elif first == "super":
            m = cur.rsplit("::", 1)[0] if "::" in cur else ""
            while rest[:1] == ["super"]:
                m, rest = (m.rsplit("::", 1)[0] if "::" in m else ""), rest[1:]
        elif self.child(cur, first):
            m, rest = cur, segs
        else:
            return None
        for seg in rest:
            c = self.child(m, seg)
            if c:
                m = c
                continue
            p = self.exports[m].get(seg)
            if p and p != [seg]:
                r = self.resolve(p, m, depth + 1)
                return r if r is not None else m
            break
        return m

    def edges(self):
        out = defaultdict(set)
        for here, code in self.code.items():
            if here == "":
                continue
            paths = [p for m in USE.finditer(code) for p in use_paths(m.group(1))]
            rest = USE.sub(lambda m: " " * len(m.group(0)), code)
            kids = [k.split("::")[-1] for k in self.alias if k.rsplit("::", 1)[0] == here and k != here
                    and "::" in k] if here else []
            heads = "crate|super|self" + "".join("|" + re.escape(k) for k in kids)
            for m in re.finditer(r"(?<![\w:.])(?:" + heads + r")(?:\s*::\s*\w+)+", rest):
                paths.append(re.split(r"\s*::\s*", m.group(0)))
            for p in paths:
                t = self.resolve(p, here)
                if t and t != here:
                    out[here].add(t)
        return out


def tarjan(nodes, edges):
    index, low, stack, on, comps, n = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = n[0]
        n[0] += 1
        stack.append(v), on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            comps.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(nodes):
        if v not in index:
            visit(v)
    return comps


# ---------------------------------------------------------------- counts

def result_string(src, fns):
    sig, other = [], []
    spans = [(f["start"], f["open"]) for f in fns]
    for m in re.finditer(r"\bResult\s*<", src.mask):
        if src.in_tests(m.start()):
            continue
        depth, par, args, cur = 0, 0, [], ""
        s = src.mask[m.end() - 1:].replace("->", "  ")
        for ch in s:
            if ch == "<":
                depth += 1
                if depth == 1:
                    continue
            elif ch == ">":
                depth -= 1
                if depth == 0:
                    break
            elif ch in "([":
                par += 1
            elif ch in ")]":
                par -= 1
            if ch == "," and depth == 1 and par == 0:
                args.append(cur)
                cur = ""
            else:
                cur += ch
        args.append(cur)
        if len(args) >= 2 and re.sub(r"\s+", "", args[-1]) in ("String", "std::string::String"):
            where = f"{src.rel}:{src.line(m.start())}"
            (sig if any(a <= m.start() < b for a, b in spans) else other).append(where)
    return sig, other


def enclosing(src, fns, off):
    inner = [f for f in fns if f["start"] <= off <= f["end"]]
    if inner:
        return min(inner, key=lambda f: f["end"] - f["start"])["qual"]
    items_before = list(re.finditer(r"\b(?:const|static|struct|enum|type|trait)\s+(\w+)", src.mask[:off]))
    return items_before[-1].group(1) if items_before else "(item)"


def main(root):
    out = []
    w = out.append
    data = {c: load(root, c) for c in LIB_CRATES}
    parsed = {c: {s.rel: items(s) for s in data[c]} for c in LIB_CRATES}
    commit = os.popen(f"git -C '{root}' rev-parse --short HEAD 2>/dev/null").read().strip()
    w(f"# Structure of the library crates ({commit or root})\n")
    w("Measured by `measure.py` (rules in its docstring). Test support = `testing*` modules; "
      "test code = `#[cfg(test)] mod` bodies.\n")

    core = data["backup-core"]
    lib = [s for s in core if not s.support]
    sup = [s for s in core if s.support]
    test_lines = lambda s: sum(s.line(b) - s.line(a) + 1 for a, b in s.tests)
    w("## backup-core: files\n")
    w(f"`src/`: **{sum(s.lines for s in core)}** lines in {len(core)} files; "
      f"library {sum(s.lines for s in lib)} lines in {len(lib)} files "
      f"(of which {sum(test_lines(s) for s in lib)} in `#[cfg(test)]` modules); "
      f"test support {sum(s.lines for s in sup)} lines in {len(sup)} files.\n")
    w("Largest 15 library files:\n")
    w("| # | file | lines | of which tests |\n|---|---|---:|---:|")
    for k, s in enumerate(sorted(lib, key=lambda s: (-s.lines, s.rel))[:15], 1):
        w(f"| {k} | `{s.rel}` | {s.lines} | {test_lines(s)} |")
    w("\nTest support: " + ", ".join(f"`{s.rel}` {s.lines}" for s in sup) + "\n")

    w("## backup-core: functions\n")
    allf = [(s, f) for s in lib for f in parsed["backup-core"][s.rel][0]]
    live = [(s, f) for s, f in allf if not f["test"]]
    tests = [(s, f) for s, f in allf if f["test"]]
    w(f"{len(live)} functions outside tests; **{sum(f['lines'] > 40 for _, f in live)}** over 40 lines, "
      f"**{sum(f['lines'] > 80 for _, f in live)}** over 80 lines. "
      f"Test modules: {sum(len(s.tests) for s in lib)} with {len(tests)} functions "
      f"({sum(f['lines'] > 40 for _, f in tests)} over 40 lines). Test support: "
      f"{sum(len(parsed['backup-core'][s.rel][0]) for s in sup)} functions.\n")
    w("| # | function | file:line | lines |\n|---|---|---|---:|")
    ranked = sorted(live, key=lambda sf: (-sf[1]["lines"], sf[0].rel, sf[1]["line"]))
    for k, (s, f) in enumerate(ranked[:15], 1):
        w(f"| {k} | `{f['qual']}` | `{s.rel}:{f['line']}` | {f['lines']} |")

    w("\n## backup-core: module map\n")
    w("| module | file | lines | first sentence of `//!` |\n|---|---|---:|---|")
    for s in sorted(core, key=lambda s: modname(s.rel) or ""):
        name = modname(s.rel) or "(lib)"
        tag = " (test support)" if s.support else ""
        doc = first_sentence(s.text).replace("|", "\\|") or "—"
        w(f"| `{name}`{tag} | `{s.rel}` | {s.lines} | {doc} |")

    w("\n## backup-core: import graph\n")
    g = Graph(core)
    edges = g.edges()
    nodes = sorted(m for m in g.by_mod if m)
    n_edges = sum(len(v) for v in edges.values())
    comps = [c for c in tarjan(nodes, edges) if len(c) > 1]
    comps.sort(key=lambda c: (-len(c), c))
    w(f"{len(nodes)} modules (without `lib`), {n_edges} edges. Aliases: " +
      (", ".join(f"`{a}` = `{b}`" for a, b in sorted(g.alias.items()) if a != b) or "none") + ".\n")
    w(f"Strongly connected components with more than one module: **{len(comps)}**; "
      f"largest: **{len(comps[0]) if comps else 0}** files.\n")
    for c in comps:
        w(f"- {len(c)}: " + ", ".join(f"`{m}`" for m in c))
    indeg = defaultdict(set)
    for a, bs in edges.items():
        for b in bs:
            indeg[b].add(a)
    w("\nImported by the most other modules:\n")
    w("| module | imported by | out-degree |\n|---|---:|---:|")
    for m in sorted(indeg, key=lambda m: (-len(indeg[m]), m))[:8]:
        w(f"| `{m}` | {len(indeg[m])} | {len(edges.get(m, ()))} |")

    w("\n## backup-core: `Engine`\n")
    blocks, trait_blocks = [], []
    for s in core:
        fns, impls = parsed["backup-core"][s.rel]
        for i in impls:
            if i["type"] == "Engine":
                ms = [f for f in fns if f["impl"] is i]
                (trait_blocks if i["trait"] else blocks).append((s, i, ms))
    methods = [f for _, _, ms in blocks for f in ms]
    files = sorted({s.rel for s, _, _ in blocks})
    w(f"**{len(blocks)}** inherent `impl Engine` blocks in **{len(files)}** files, **{len(methods)}** methods "
      f"({sum(f['vis'] == 'pub' for f in methods)} `pub`, {sum(f['vis'] == 'pub(..)' for f in methods)} "
      f"`pub(crate/super)`, {sum(f['vis'] is None for f in methods)} private; "
      f"{sum(f['recv'] for f in methods)} take `self`, associated without `self`: "
      + (", ".join(f"`{f['name']}`" for f in methods if not f["recv"]) or "none") + ").\n")
    w("| file:line | methods |\n|---|---|")
    for s, i, ms in sorted(blocks, key=lambda b: (b[0].rel, b[1]["line"])):
        w(f"| `{s.rel}:{i['line']}` | " + ", ".join(
            f"{'`' + f['name'] + '`'}{'' if f['vis'] == 'pub' else ' (' + (f['vis'] or 'priv') + ')'}" for f in ms) + " |")
    if trait_blocks:
        w("\nTrait impls: " + ", ".join(f"`{i['trait']}` (`{s.rel}:{i['line']}`)" for s, i, _ in trait_blocks))

    w("\n## Library crates: `Result<_, String>` and CLI flags\n")
    w("| crate | files | lines | functions | >40 | >80 | `Result<_, String>` in signatures | elsewhere | CLI-flag literals |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    rs_all, flags_all = {}, {}
    for c in LIB_CRATES:
        srcs = [s for s in data[c] if not s.support]
        fl = [f for s in srcs for f in parsed[c][s.rel][0] if not f["test"]]
        sig, oth = [], []
        flags = []
        for s in srcs:
            a, b = result_string(s, parsed[c][s.rel][0])
            sig += a
            oth += b
            for off, lit in s.strings:
                if not s.in_tests(off) and FLAG_RE.search(lit):
                    flags.append(f"`{s.rel}:{s.line(off)}` " + ", ".join(sorted(set(FLAG_RE.findall(lit)))))
        rs_all[c], flags_all[c] = (sig, oth), flags
        w(f"| {c} | {len(srcs)} | {sum(s.lines for s in srcs)} | {len(fl)} | {sum(f['lines'] > 40 for f in fl)} "
          f"| {sum(f['lines'] > 80 for f in fl)} | {len(sig)} | {len(oth)} | {len(flags)} |")
    tot = lambda i: sum(len(rs_all[c][i]) for c in LIB_CRATES)
    w(f"\nTotal `Result<_, String>`: {tot(0)} in signatures + {tot(1)} elsewhere = **{tot(0) + tot(1)}**; "
      f"CLI-flag literals: **{sum(len(v) for v in flags_all.values())}**.\n")
    for c in LIB_CRATES:
        sig, oth = rs_all[c]
        if sig or oth:
            w(f"- `Result<_, String>` in {c}: " + ", ".join(f"`{x}`" for x in sig) +
              ("; elsewhere: " + ", ".join(f"`{x}`" for x in oth) if oth else ""))
    for c in LIB_CRATES:
        for x in flags_all[c]:
            w(f"- flag literal in {c}: {x}")
    for c in LIB_CRATES[1:]:
        srcs = [s for s in data[c] if not s.support]
        big = sorted(srcs, key=lambda s: (-s.lines, s.rel))[:5]
        fl = sorted(((s, f) for s in srcs for f in parsed[c][s.rel][0] if not f["test"]),
                    key=lambda sf: (-sf[1]["lines"], sf[0].rel, sf[1]["line"]))[:5]
        w(f"\n{c}: largest files " + ", ".join(f"`{s.rel}` {s.lines}" for s in big) +
          "; longest functions " + ", ".join(f"`{f['qual']}` ({s.rel}) {f['lines']}" for s, f in fl) +
          "; test support " + (", ".join(f"`{s.rel}` {s.lines}" for s in data[c] if s.support) or "none") + ".")

    w("\n## backup-core: copies of dump-format rules\n")
    rules = [
        ("identifier quoting (`\"` doubled)",
         r"""\.replace\(\s*(?:'"'|"\\"")\s*,\s*"\\"\\""\s*\)|\.split_inclusive\(\s*(?:'"'|b'"')\s*\)"""),
        ("internal tables (`starts_with(\"_cf_\")`)", r"""starts_with\(\s*"_cf_"\s*\)"""),
        ("first line (`PRAGMA defer_foreign_keys=TRUE;`)",
         r"""b?"PRAGMA defer_foreign_keys=TRUE;(?:"|\\n)"""),
    ]
    for title, pat in rules:
        hits, sup_hits = [], []
        for s in core:
            fns = parsed["backup-core"][s.rel][0]
            for m in re.finditer(pat, s.nocom):
                if s.in_tests(m.start()):
                    continue
                extra = ""
                if "_cf_" in pat:
                    f_ = [f for f in fns if f["start"] <= m.start() <= f["end"]]
                    lo = s.line(m.start())
                    sq = [s.line(x.start()) for x in re.finditer(r'starts_with\(\s*"sqlite_', s.nocom)
                          if abs(s.line(x.start()) - lo) <= 3]
                    extra = f" (+ `sqlite_` on line {', '.join(map(str, sq))})" if sq else " (no `sqlite_` check)"
                (sup_hits if s.support else hits).append(
                    (f"`{s.rel}:{s.line(m.start())}`", enclosing(s, fns, m.start()), extra))
        copies = len({(h[0].split(':')[0], h[1]) for h in hits})
        w(f"- {title}: **{copies}** copies — " +
          ", ".join(f"{a} in `{b}`{e}" for a, b, e in hits) +
          (f"; in test support: " + ", ".join(f"{a} in `{b}`" for a, b, _ in sup_hits) if sup_hits else ""))
    print("\n".join(out))


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
