#!/usr/bin/env python3
"""Source links next to the tutorial's snippets, so that chapters read well on the Git forge too.

Doxygen shows `\\snippet FILE TAG` as the lines between the two `[TAG]` markers of FILE; the forge
shows the command as text. This script keeps one line right after each snippet command:

    Source: [FILE, lines A-B](../FILE#LA-LB)

with A-B the lines between the markers, so a reader on the forge follows the link to the code
(Doxygen turns the link into one to its source page: tools/docs_md_filter.py).

    python3 tools/snippet_links.py            # write the links into tutorial/*.md
    python3 tools/snippet_links.py --check    # exit 1, naming each stale or missing link

--check runs as a test: moving code under a snippet makes it fail until the links are rewritten.
"""
import argparse
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SNIPPET = re.compile(r"^\\snippet\s+(\S+)\s+(.+?)\s*$")
LINK_PREFIX = "Source: ["


class SnippetError(Exception):
    pass


def marker_lines(path: pathlib.Path, tag: str) -> tuple[int, int]:
    """First and last line (1-based) of the code between the two `[tag]` marker lines."""
    try:
        lines = path.read_text().splitlines()
    except OSError as e:
        raise SnippetError(f"cannot read {path}: {e.strerror}") from e
    marks = [i + 1 for i, line in enumerate(lines) if line.strip().endswith(f"[{tag}]")]
    if len(marks) != 2:
        raise SnippetError(f"{path.relative_to(ROOT)}: {len(marks)} markers [{tag}], expected 2")
    return marks[0] + 1, marks[1] - 1


def link_line(chapter: pathlib.Path, source: str, tag: str) -> str:
    first, last = marker_lines(ROOT / source, tag)
    rel = pathlib.Path("..") / source if chapter.parent != ROOT else pathlib.Path(source)
    return f"{LINK_PREFIX}{source}, lines {first}-{last}]({rel.as_posix()}#L{first}-L{last})"


def linked(chapter: pathlib.Path) -> tuple[list[str], list[str]]:
    """The chapter's lines with a current link after every snippet, and what was stale or missing."""
    old = chapter.read_text().splitlines()
    out, problems = [], []
    i = 0
    while i < len(old):
        out.append(old[i])
        m = SNIPPET.match(old[i])
        i += 1
        if not m:
            continue
        want = link_line(chapter, m.group(1), m.group(2))
        have = old[i] if i < len(old) and old[i].startswith(LINK_PREFIX) else None
        if have is not None:
            i += 1
        if have != want:
            problems.append(f"{chapter.relative_to(ROOT)}:{i}: {'stale' if have else 'no'} link for "
                            f"\\snippet {m.group(1)} {m.group(2)} (expected: {want})")
        out.append(want)
    return out, problems


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 when a link is stale or missing")
    a = p.parse_args(argv)
    problems = []
    try:
        for chapter in sorted((ROOT / "tutorial").glob("*.md")):
            lines, found = linked(chapter)
            problems += found
            if found and not a.check:
                chapter.write_text("\n".join(lines) + "\n")
    except SnippetError as e:
        print(f"snippet_links: {e}", file=sys.stderr)
        return 2
    if a.check:
        for line in problems:
            print(f"snippet_links: {line}", file=sys.stderr)
        print(f"snippet_links: {len(problems)} stale or missing links" if problems else "snippet_links: all links current")
        return 1 if problems else 0
    print(f"snippet_links: rewrote {len(problems)} links")
    return 0


if __name__ == "__main__":
    sys.exit(main())
