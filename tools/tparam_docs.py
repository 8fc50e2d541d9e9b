#!/usr/bin/env python3
"""Every template parameter of the library's code is documented with `@tparam`.

The style rule is "Doxygen comments on public API and template parameters"; Doxygen itself does
not warn about a missing `@tparam` unless every function parameter is documented too, so this
script checks it: for each `template <...>` in reference/include, cuda/include and cuda/stages
(headers and kernel files, where the learner reads the kernels' parameters), the `///` block just
above it (snippet markers `// [name]` may stand between) must hold `@tparam NAME` for each of its
parameters. Explicit specialisations (`template <>`) have none, and an out-of-class definition of
a member template (`Type::member(`) is documented at its declaration.

    python3 tools/tparam_docs.py            # list the templates that lack a @tparam
    python3 tools/tparam_docs.py --check    # exit 1 if there is one
"""
import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOLDERS = ("reference/include", "cuda/include", "cuda/stages")
SUFFIXES = {".hpp", ".h", ".cuh", ".cu"}
TEMPLATE = re.compile(r"^\s*template\s*<")
SPECIALISATION = re.compile(r"^\s*template\s*<\s*>")
OUT_OF_CLASS = re.compile(r"\b\w+(<[^;{]*>)?::~?\w+\s*\(")
SNIPPET_MARKER = re.compile(r"^\s*// \[[\w .-]+\]\s*$")


def split_top_level(text: str) -> list[str]:
    """`text` split at the commas outside brackets."""
    parts, depth, current = [], 0, ""
    for ch in text:
        if ch in "<([{":
            depth += 1
        elif ch in ">)]}":
            depth -= 1
        if ch == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += ch
    if current.strip():
        parts.append(current)
    return parts


def parameter_list(lines: list[str], i: int) -> tuple[str, int]:
    """The text between `template <` on line i and its closing `>`, and the line that closes it."""
    text = "\n".join(lines[i:i + 20])
    open_at = text.index("<")
    depth = 0
    for k in range(open_at, len(text)):
        if text[k] == "<":
            depth += 1
        elif text[k] == ">":
            depth -= 1
            if depth == 0:
                return text[open_at + 1:k], i + text.count("\n", 0, k)
    return text[open_at + 1:], i


def parameter_names(params: str) -> list[str]:
    """Names of the template parameters (`typename T`, `int D = 4`, `typename... Args`)."""
    names = []
    for p in split_top_level(params):
        declared = p.split("=", 1)[0].strip()
        m = re.search(r"([A-Za-z_]\w*)\s*$", declared)
        if m and m.group(1) not in ("typename", "class"):
            names.append(m.group(1))
    return names


def doc_block(lines: list[str], i: int) -> str:
    """The `///` lines just above line i (snippet markers between are skipped)."""
    doc, b = [], i - 1
    while b >= 0 and (lines[b].strip().startswith("///") or SNIPPET_MARKER.match(lines[b])):
        doc.append(lines[b])
        b -= 1
    return "\n".join(doc)


def faults_of(path: pathlib.Path) -> list[str]:
    lines = path.read_text(encoding="utf-8").splitlines()
    faults, i = [], 0
    while i < len(lines):
        if TEMPLATE.match(lines[i]) and not SPECIALISATION.match(lines[i]):
            params, end = parameter_list(lines, i)
            names = parameter_names(params)
            following = " ".join(lines[end:end + 3])
            doc = doc_block(lines, i)
            if names and not (not doc and OUT_OF_CLASS.search(following)):
                lacking = [n for n in names if not re.search(r"@tparam\s+" + re.escape(n) + r"\b", doc)]
                if lacking:
                    where = f"{path.relative_to(ROOT)}:{i + 1}"
                    faults.append(f"{where}: no @tparam for {', '.join(lacking)}" + ("" if doc else " (no /// block)"))
            i = end
        i += 1
    return faults


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a template parameter is undocumented")
    args = parser.parse_args()
    files = sorted(p for folder in FOLDERS for p in (ROOT / folder).rglob("*") if p.suffix in SUFFIXES)
    faults = [f for p in files for f in faults_of(p)]
    for f in faults:
        print(f)
    print(f"{len(files)} files, {len(faults)} templates with an undocumented parameter")
    return 1 if faults and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
