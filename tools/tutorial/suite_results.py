"""The committed suite results, as the tutorial's scripts read them (imported, not run).

A suite results file is one `patlab compare ... --format json` record per line, keyed by its
workload arguments (`"key": "--tree 256_1024 --heads 32/8"`); docs/results/README.md lists the
runs. load() gives, per workload key, the run's fields (an object; runs saved before 2026-12
have a list of {field, value}) and the rows of its stages by slug.
"""
import json
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
SUITE_DIR = ROOT / "docs/results/2026-11-22-h100-suite"
DEFAULT_SUITE = SUITE_DIR / "patlab.jsonl"
# The H100 of the committed suite: SMs, for "CTAs resident at once".
H100_SMS = 132


def fail(message: str) -> None:
    """One line naming the problem, exit 2 (bad input)."""
    print(f"{pathlib.Path(sys.argv[0]).name}: {message}", file=sys.stderr)
    sys.exit(2)


def run_fields(run) -> dict:
    """The run's fields as an object, whichever of the two saved forms `run` has."""
    return run if isinstance(run, dict) else {f["field"]: f["value"] for f in run}


def load(path=DEFAULT_SUITE) -> dict:
    """{key: {"run": fields, "stages": {slug: row}}} from a suite's patlab.jsonl."""
    path = pathlib.Path(path)
    if not path.is_file():
        fail(f"no results file {path}")
    suite = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        try:
            d = json.loads(line)
            suite[d["key"]] = {"run": run_fields(d["compare"]["run"]),
                               "stages": {r["stage"]: r for r in d["compare"]["results"]}}
        except (ValueError, KeyError, TypeError) as e:
            fail(f"{path}:{n}: not a suite record ({e})")
    return suite


def row(suite: dict, key: str, stage: str) -> dict:
    """One stage's row of one workload; exit 2 naming what is missing."""
    if key not in suite:
        fail(f"no workload '{key}' in the results (keys are tools/suite.txt lines)")
    if stage not in suite[key]["stages"]:
        fail(f"no stage '{stage}' for '{key}' (stages: {', '.join(suite[key]['stages'])})")
    return suite[key]["stages"][stage]


def ctas(r: dict) -> int:
    """The CTA count at the start of a stage's notes ("256 CTAs, chunks of ...")."""
    m = re.match(r"(\d+) CTAs", r["notes"])
    if not m:
        fail(f"notes without a CTA count: '{r['notes']}'")
    return int(m.group(1))
