#!/usr/bin/env python3
"""Doxygen input filter for the Markdown pages (docs/Doxyfile.in, FILTER_PATTERNS): links that
work on the Git forge, made to work in the HTML too.

A chapter links to source files the way the forge wants them, relative to the chapter
(`[cuda/stages/01_naive.cu, lines 50-93](../cuda/stages/01_naive.cu#L50-L93)`). Doxygen copies
such a link as it is, and the HTML has no such file. This filter rewrites, on the way into
Doxygen only (the files are not changed):
- a link to a source file that Doxygen shows as a source page: to that page, at the first line;
- a link to a Markdown page: to its HTML page (Doxygen 1.9 sends some, such as a results
  folder's link to its own summary.md, to an empty "file" page instead);
- a link to any other file or folder (not a web address): its text, not a link;
- an image by a path relative to the chapter (`../docs/figures/x.png`, what the forge shows): by
  its path from the repository root, which Doxygen finds and copies (it keeps `../` paths as they
  are, and the HTML folder has no such file).
Web addresses and anchors pass unchanged.

    python3 tools/docs_md_filter.py FILE.md     # the filtered text on stdout (as Doxygen calls it)
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
# The folders of docs/Doxyfile.in's INPUT whose sources get source pages, and their extensions.
SOURCE_PAGE_DIRS = ("reference/include", "cuda/include", "cuda/stages")
SOURCE_PAGE_EXTS = (".hpp", ".h", ".cuh", ".cu")
# [text](target): not an image (no "!" before), target without spaces.
LINK = re.compile(r"(?<!!)\[([^\]\n]+)\]\(([^)\s]+)\)")
# ![text](target): an image, target without spaces.
IMAGE = re.compile(r"!\[([^\]\n]*)\]\(([^)\s]+)\)")
FORGE_LINE = re.compile(r"^L(\d+)(?:-L\d+)?$")
# A page's own label: "# Title {#label}" on its first heading line.
PAGE_LABEL = re.compile(r"^#\s.*\{#([A-Za-z0-9_]+)\}\s*$")


def doxygen_name(filename: str) -> str:
    """Doxygen's file name for a source (escapeCharsInString): '_' doubled, '.' as '_8'."""
    return filename.replace("_", "__").replace(".", "_8")


def page_html(rel: str) -> str:
    """The HTML page Doxygen makes of a Markdown file: its label, else md_ and the path with
    every '/', '-' and '.' as '_' (index.html for the main page, the README)."""
    if rel == "README.md":
        return "index.html"
    for line in (ROOT / rel).read_text().splitlines():
        if line.startswith("#"):
            label = PAGE_LABEL.match(line)
            if label:
                return label.group(1) + ".html"
            break
    return "md_" + re.sub(r"[/.-]", "_", rel[: -len(".md")]) + ".html"


def rewrite(link: re.Match, page_dir: pathlib.Path) -> str:
    text, target = link.group(1), link.group(2)
    path, _, anchor = target.partition("#")
    if not path or re.match(r"^[a-z]+:", path):
        return link.group(0)
    resolved = (ROOT / path.lstrip("/")) if path.startswith("/") else (page_dir / path)
    try:
        rel = resolved.resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return text  # outside the repository: nothing Doxygen could show
    if rel.endswith(".md"):
        return f"[{text}]({page_html(rel)})" if resolved.is_file() else text
    if rel.startswith(SOURCE_PAGE_DIRS) and rel.endswith(SOURCE_PAGE_EXTS):
        line = FORGE_LINE.match(anchor)
        return f"[{text}]({doxygen_name(pathlib.PurePath(rel).name)}_source.html" + \
               (f"#l{int(line.group(1)):05d})" if line else ")")
    return text


def rewrite_image(image: re.Match, page_dir: pathlib.Path) -> str:
    text, target = image.group(1), image.group(2)
    if re.match(r"^[a-z]+:", target) or target.startswith("/"):
        return image.group(0)
    try:
        rel = (page_dir / target).resolve().relative_to(ROOT).as_posix()
    except ValueError:
        return image.group(0)
    return f"![{text}]({rel})"


def main(argv) -> int:
    if len(argv) != 2:
        print("usage: docs_md_filter.py FILE.md", file=sys.stderr)
        return 2
    page = pathlib.Path(argv[1]).resolve()
    in_code = False
    out = []
    for line in page.read_text().splitlines(keepends=True):
        if line.lstrip().startswith("```"):
            in_code = not in_code
        if not in_code:
            line = LINK.sub(lambda m: rewrite(m, page.parent), IMAGE.sub(lambda m: rewrite_image(m, page.parent), line))
        out.append(line)
    sys.stdout.write("".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
