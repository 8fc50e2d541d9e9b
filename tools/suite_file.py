"""Suite files (tools/suite.txt, tools/suite-categories.txt): one workload per line as patlab
workload arguments; a line starting with `#` is a comment, and so is the rest of a workload line
from ` #` on (the workload is the text before it); a comment line `# category: NAME` puts the
workload lines after it (up to the next such line) in category NAME. Lines before any category
line are in DEFAULT_CATEGORY.

Read by tools/peers/suite.py (which writes each workload's category into its results),
tools/summarize_results.py (which groups by it) and tests/cli/test_suite_files.py.
"""

from __future__ import annotations

import pathlib

#: The comment that opens a category.
CATEGORY_MARK = "# category:"
#: Category of lines before the first category line (and of results that carry none).
DEFAULT_CATEGORY = "uncategorized"
#: Category of workloads given on suite.py's command line (--workload).
COMMAND_LINE_CATEGORY = "command line"


def read_entries(path: pathlib.Path) -> list[tuple[str, str]]:
    """(category, workload line) for every workload line of the file, in order."""
    entries = []
    category = DEFAULT_CATEGORY
    for raw in pathlib.Path(path).read_text().splitlines():
        line = raw.strip()
        if not line:
            continue
        if line.startswith(CATEGORY_MARK):
            category = line[len(CATEGORY_MARK):].strip() or DEFAULT_CATEGORY
            continue
        if line.startswith("#"):
            continue
        entries.append((category, line.split(" #", 1)[0].strip()))
    return entries


def categories_by_line(path: pathlib.Path) -> dict[str, str]:
    """workload line -> its category (the first one, should a line appear twice)."""
    out: dict[str, str] = {}
    for category, line in read_entries(path):
        out.setdefault(line, category)
    return out
