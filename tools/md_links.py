#!/usr/bin/env python3
"""Every link and image of the tracked Markdown files points at a file that exists.

Links are written relative to the page (`../docs/results/x/README.md`, `../cuda/stages/07_pat.cu#L10`):
that is what the Git forge follows and what tools/docs_md_filter.py rewrites for Doxygen. A target
that starts with "/" is refused too: the filter leaves it alone, so Doxygen would show it broken.
Web addresses and in-page anchors are not checked (no network here).

    python3 tools/md_links.py            # list the broken links, exit 0
    python3 tools/md_links.py --check    # exit 1 if there is one
"""
import argparse
import pathlib
import re
import subprocess
import sys
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parent.parent
# [text](target) and ![text](target), target without spaces, outside code blocks.
TARGET = re.compile(r"\]\(([^)\s]+)\)")


def tracked_markdown() -> list[str]:
    done = subprocess.run(["git", "-C", str(ROOT), "ls-files", "*.md"], capture_output=True, text=True)
    if done.returncode == 0:
        return done.stdout.split()
    return [p.relative_to(ROOT).as_posix() for p in ROOT.rglob("*.md")
            if not any(part.startswith((".", "build")) for part in p.relative_to(ROOT).parts)]


def broken(name: str) -> list[str]:
    page = ROOT / name
    faults, in_code = [], False
    for n, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if in_code:
            continue
        for m in TARGET.finditer(line):
            target = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", target) or target.startswith("#"):
                continue
            path = urllib.parse.unquote(target.split("#", 1)[0])
            if target.startswith("/"):
                faults.append(f"{name}:{n}: {target}: write it relative to the page")
            elif path and not (page.parent / path).exists():
                faults.append(f"{name}:{n}: {target}: no such file")
    return faults


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a link is broken")
    args = parser.parse_args()
    pages = tracked_markdown()
    faults = [f for name in pages for f in broken(name)]
    for f in faults:
        print(f)
    print(f"{len(pages)} pages, {len(faults)} broken links")
    return 1 if faults and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
