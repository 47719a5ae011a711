#!/usr/bin/env python3
"""The crate's layering, checked from its sources.

- No module of native/src uses a module that uses it back, directly or
  through others (a module is a file; `mod.rs` is its directory's module).
- protocol/ uses no tokio, rustler or upper layer (connection, nif);
  connection/ uses no rustler and no nif; buffers and call_cost use
  neither tokio nor rustler nor an upper layer.
- No Erlang vocabulary below nif/: no `&'static str` in connection/ or
  protocol/ outside tests and comments (atom names and badstate texts were
  carried that way; typed enums are mapped to terms in nif/ only).

Prints each violation and exits 1 if there is any.
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "native", "src")

USE = re.compile(r"\b(?:use|pub use|pub\(crate\) use|pub\(super\) use)\s+([^;]+);", re.S)
PATH = re.compile(r"\b(crate|super|self)((?:::\w+)+)")


def module_of(path):
    rel = os.path.relpath(path, ROOT)[:-3]
    parts = rel.split(os.sep)
    if parts[-1] in ("mod", "lib"):
        parts = parts[:-1]
    return tuple(parts)


def sources():
    for dirpath, _, files in os.walk(ROOT):
        for name in files:
            if name.endswith(".rs"):
                yield os.path.join(dirpath, name)


def strip(text):
    """Drops comments and everything from the first `#[cfg(test)]` module on."""
    text = re.sub(r"//[^\n]*", "", text)
    text = re.sub(r"/\*.*?\*/", "", text, flags=re.S)
    cut = re.search(r"#\[cfg\(test\)\]\s*(pub\s+)?mod\s+\w+\s*\{", text)
    return text[: cut.start()] if cut else text


def expand(tree):
    """The paths a use tree names: `a::{b, c::{d}}` gives a::b, a::c::d."""
    tree = re.sub(r"\s+", "", tree)
    brace = tree.find("{")
    if brace < 0:
        return [tree.split(" as ")[0]]
    prefix, inner = tree[:brace], tree[brace + 1:-1]
    parts, depth, start = [], 0, 0
    for i, ch in enumerate(inner):
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(inner[start:i])
            start = i + 1
    parts.append(inner[start:])
    return [q for part in parts if part for q in expand(prefix + part)]


def paths(text):
    """Every `crate::`/`super::`/`self::` path of the text, use trees expanded."""
    for found in USE.finditer(text):
        for path in expand(found.group(1)):
            head, _, rest = path.partition("::")
            if head in ("crate", "super", "self"):
                yield head, "::" + rest
    for found in PATH.finditer(USE.sub("", text)):
        yield found.group(1), found.group(2)


def is_test_file(path):
    rel = os.path.relpath(path, ROOT)
    return rel.endswith("tests.rs") or os.sep + "tests" + os.sep in rel


def resolve(module, anchor, rest, modules):
    """The longest known module named by `anchor::rest` seen from `module`."""
    if anchor == "crate":
        base = ()
    elif anchor == "self":
        base = module
    else:
        base = module[:-1]
    names = [n for n in rest.split("::") if n]
    for n in range(len(names), 0, -1):
        candidate = base + tuple(names[:n])
        if candidate in modules:
            return candidate
    return None


def main():
    files = {module_of(p): p for p in sources() if not is_test_file(p)}
    modules = set(files)
    edges = {m: set() for m in modules}
    problems = []
    for module, path in files.items():
        text = strip(open(path, encoding="utf-8").read())
        for anchor, rest in paths(text):
            target = resolve(module, anchor, rest, modules)
            # A module's own submodules and its parents are structure, not use.
            if target and target != module and target[: len(module)] != module \
                    and module[: len(target)] != target:
                edges[module].add(target)
        layer = module[0] if module else "lib"
        uses = set(re.findall(r"\b(tokio|rustler)::", text))
        upper = {t[0] for t in edges[module] if t}
        if layer in ("protocol", "buffers", "call_cost"):
            for bad in sorted(uses | (upper & {"connection", "nif"})):
                problems.append(f"{path}: {layer} must not use {bad}")
        if layer == "connection":
            for bad in sorted((uses & {"rustler"}) | (upper & {"nif"})):
                problems.append(f"{path}: connection must not use {bad}")
        if layer in ("protocol", "connection") and "&'static str" in text:
            problems.append(f"{path}: &'static str below nif/ (map a typed enum in nif/ instead)")

    # Cycles: a module reaching itself through the use graph.
    def reach(start):
        seen, todo = set(), list(edges[start])
        while todo:
            m = todo.pop()
            if m not in seen:
                seen.add(m)
                todo.extend(edges.get(m, ()))
        return seen

    for module in sorted(modules):
        if module in reach(module):
            back = sorted("::".join(t) for t in edges[module] if module in reach(t) or t == module)
            problems.append(f"cycle: {'::'.join(module)} <-> {', '.join(back)}")

    for p in problems:
        print(p)
    print(f"check_layers: {len(modules)} modules, {sum(map(len, edges.values()))} uses, "
          f"{len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
