#!/usr/bin/env python3
"""Every commit the documentation names can be checked out, or says why not.

A result is worth what its commit is: docs/results/ records the commit each number measured, and
the chapters quote them. This script reads every tracked Markdown file for commit-like words (7 to
40 hex digits with at least one letter and one digit, not part of a path, a file name or a
truncated file hash such as `adb1e4c9…15006de`) and accepts each one that is

- a commit of the checked-out history (HEAD or one of its ancestors: what a clone of main
  holds, not a commit only another local branch has), or
- another project's commit listed in tools/foreign_commits.txt with its repository, or
- a commit of ours that was not kept (a throw-away branch of an experiment), on a line that says
  so with the words "not kept", so that a reader never looks for it in vain.

    python3 tools/commit_refs.py            # list every reference and how it was accepted
    python3 tools/commit_refs.py --check    # exit 1, naming each reference that is none of these

Outside a git checkout, or in a shallow clone (where old commits are absent by design), it exits
77: there is nothing it can check.
"""
import argparse
import pathlib
import re
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FOREIGN = ROOT / "tools" / "foreign_commits.txt"
# A commit-like word: not glued to a path, a file name, an identifier or a truncated file hash.
WORD = re.compile(r"(?<![0-9A-Za-z_/.\-…])[0-9a-f]{7,40}(?![0-9A-Za-z_…])")
NOT_KEPT = "not kept"
SKIP = 77


def git(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(ROOT), *args], input=stdin, capture_output=True, text=True)


def foreign_commits() -> dict[str, str]:
    """tools/foreign_commits.txt: 'HASH REPOSITORY' per line, '#' comments."""
    found = {}
    for n, line in enumerate(FOREIGN.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.split()
        if len(parts) != 2 or not re.fullmatch(r"[0-9a-f]{7,40}", parts[0]):
            raise SystemExit(f"{FOREIGN.relative_to(ROOT)}:{n}: expected 'HASH REPOSITORY', got {line!r}")
        found[parts[0]] = parts[1]
    return found


def references() -> list[tuple[str, int, str, str]]:
    """(file, line number, word, line) for every commit-like word of the tracked Markdown files."""
    files = git("ls-files", "*.md").stdout.split()
    refs = []
    for name in files:
        for n, line in enumerate((ROOT / name).read_text(encoding="utf-8").splitlines(), 1):
            for m in WORD.finditer(line):
                word = m.group(0)
                if re.search("[a-f]", word) and re.search("[0-9]", word):
                    refs.append((name, n, word, line))
    return refs


def ours(words: set[str]) -> set[str]:
    """The words that name exactly one commit of the checked-out history (HEAD and its ancestors).

    A commit that only another local branch holds does not count: a clean clone of main, which is
    what CI and a reader get, would not have it."""
    ordered = sorted(words)
    out = git("cat-file", "--batch-check", stdin="".join(w + "^{commit}\n" for w in ordered)).stdout.splitlines()
    history = set(git("rev-list", "HEAD").stdout.split())
    return {w for w, o in zip(ordered, out) if o.split()[1:2] == ["commit"] and o.split()[0] in history}


def foreign_repo(word: str, foreign: dict[str, str]) -> str | None:
    """The repository of a listed foreign commit that `word` abbreviates (or spells out)."""
    for full, repo in foreign.items():
        if full.startswith(word) or word.startswith(full):
            return repo
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 on a reference that is none of the three kinds")
    args = parser.parse_args()
    if git("rev-parse", "--git-dir").returncode != 0:
        print("SKIPPED: not a git checkout")
        return SKIP
    if git("rev-parse", "--is-shallow-repository").stdout.strip() == "true":
        print("SKIPPED: a shallow clone does not hold the old commits")
        return SKIP
    foreign = foreign_commits()
    refs = references()
    found = ours({word for _, _, word, _ in refs})
    faults = 0
    for name, n, word, line in refs:
        repo = foreign_repo(word, foreign)
        if word in found:
            kind = "ours"
        elif repo:
            kind = f"foreign ({repo})"
        elif NOT_KEPT in line:
            kind = "ours, not kept (said on the line)"
        else:
            faults += 1
            print(f"{name}:{n}: {word} is not a commit of the checked-out history, not listed in "
                  f"{FOREIGN.relative_to(ROOT)}, and the line does not say '{NOT_KEPT}'")
            continue
        if not args.check:
            print(f"{name}:{n}: {word}: {kind}")
    print(f"{len(refs)} commit references, {faults} unresolved")
    return 1 if faults and args.check else 0


if __name__ == "__main__":
    sys.exit(main())
