#!/usr/bin/env python3
"""Summaries of a suite run for the README and the tutorial, generated from the run's logs.

Reads RESULTS/patlab.jsonl (one `patlab compare --format json` per workload, as
tools/run_suite.sh writes it) and RESULTS/peers.jsonl, or, for a suite run in parts (one device
call each, each with its own commit), those of every RESULTS/part*/ folder together, and writes
  RESULTS/summary.md   stage table (geometric means over the suite), one row per category of
                       the suite file (`# category:` lines, tools/suite_file.py: stage 7 against
                       stage 6, stage 3 and the best peer), the issue's targets with their
                       verdicts, and per-workload tables of chosen workloads;
  RESULTS/stages.png   every stage's time relative to stage 3 and its % of the copy bandwidth on
                       unique bytes, per workload, with the best peer beside them;
  RESULTS/stages_by_heads.png  the same speedups, one panel per head configuration
                       (tools/figures/stages_by_heads.py on RESULTS/suite.json), the README's figure;
and with --readme README.md, the results table between the README's markers
`<!-- results:begin -->` and `<!-- results:end -->` (stages from the registry, stages.def).
Nothing is typed in by hand: rerun it on a new results folder and the tables follow.

    python3 tools/summarize_results.py docs/results/2026-11-22-h100-suite --readme README.md
"""

from __future__ import annotations

import argparse
import json
import math
import pathlib
import re
import sys

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import suite_file  # noqa: E402

#: Suite files whose `# category:` lines name the category of results that carry none (runs
#: recorded before suite.py wrote categories).
CATEGORY_SOURCES = [REPO / "tools/suite.txt", REPO / "tools/suite-categories.txt"]
#: Stages every run needs for the stage tables (a run without one, e.g. a failed compare, is
#: listed and left out).
REQUIRED_STAGES = ("naive", "splitkv", "pat")

#: Workloads shown one by one in summary.md (suite keys).
HIGHLIGHTS = [
    "--tree 1,10_4096,416 --heads 32/8",
    "--tree 1,256_256,32 --heads 32/8",
    "--tree 1,4,16,512_1024,256,128,32 --heads 32/8",
    "--tree 1,128_16384,256 --heads 32/8",
    "--tree 4,256_8192,512 --heads 32/8",
    "--tree 256_4096 --heads 32/8",
    "--tree 4_32768 --heads 32/8",
]
#: Workloads whose times the README table shows, with short column names.
README_COLUMNS = [
    ("--tree 1,4,16,512_1024,256,128,32 --heads 32/8", "4-level tree, 512 requests, 32/8"),
    ("--tree 1,128_16384,256 --heads 32/8", "16K prefix x 128 requests, 32/8"),
    ("--tree 256_4096 --heads 32/8", "no sharing, 256 x 4096, 32/8"),
]
#: Markers of the generated block in the README.
README_BEGIN, README_END = "<!-- results:begin -->", "<!-- results:end -->"
#: Unique KV bytes from which the bandwidth target applies (issue: >= 128 MB).
TARGET_UNIQUE_BYTES = 128e6
#: Fraction of the copy bandwidth the full design should reach there.
TARGET_COPY_PCT = 70.0
#: Slack allowed against stage 3 on any workload.
TARGET_SLOWER_PCT = 5.0


def sources(results: pathlib.Path) -> list[pathlib.Path]:
    """The folders whose patlab.jsonl/peers.jsonl/suite.json make up the run: RESULTS itself, or its
    part*/ folders in order when the suite ran in parts."""
    if (results / "patlab.jsonl").exists():
        return [results]
    return sorted((d for d in results.glob("part*") if (d / "patlab.jsonl").exists()),
                  key=lambda d: [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", d.name)])


def load(results: pathlib.Path):
    """The patlab rows (one per workload) and the peer rows by workload key. A workload that a later
    part ran again (one that an earlier part's deadline cut before its peers) is taken whole from
    the last part that has its patlab row: that row and that part's peer rows."""
    patlab, peers = {}, {}
    for folder in sources(results):
        rows = [json.loads(line) for line in (folder / "patlab.jsonl").read_text().splitlines() if line.strip()]
        part_peers = {}
        peers_file = folder / "peers.jsonl"
        if peers_file.exists():
            for line in peers_file.read_text().splitlines():
                if line.strip():
                    row = json.loads(line)
                    part_peers.setdefault(row["key"], []).append(row)
        for row in rows:
            patlab.pop(row["key"], None)
            patlab[row["key"]] = row
            peers[row["key"]] = part_peers.get(row["key"], [])
    return list(patlab.values()), peers


#: Peer name prefixes and the systems they run, for the tables' "best peer" label.
PEER_FAMILIES = [("fi-decode", "FlashInfer decode"), ("fi-cascade", "FlashInfer cascade"), ("sdpa", "torch SDPA"),
                 ("fasttree", "FastTree"), ("deft", "DeFT"), ("vllm-fa3", "vLLM FA3"),
                 ("vllm-cascade", "vLLM cascade")]


def peer_label(runs) -> str:
    """The systems among the peers that ran, in PEER_FAMILIES order (e.g. "FlashInfer decode, torch SDPA")."""
    names = {p["peer"] for r in runs for p in r["peers"]}
    return ", ".join(label for prefix, label in PEER_FAMILIES if any(n.startswith(prefix) for n in names))


def provenance(runs) -> tuple[str, str]:
    """(commits, dates) of the runs: one commit and day, or each commit with its workload count and
    the first and last day, for a suite run in parts."""
    commits: dict[str, int] = {}
    for r in runs:
        c = r["run"].get("commit", "?")
        commits[c] = commits.get(c, 0) + 1
    dates = sorted(str(r["run"].get("date", "?"))[:10] for r in runs)
    day = dates[0] if dates[0] == dates[-1] else f"{dates[0]} to {dates[-1]}"
    if len(commits) == 1:
        return f"commit {next(iter(commits))}", day
    return "commits " + ", ".join(f"{c} ({n} workloads)" for c, n in commits.items()), day


def suite_names(runs) -> str:
    """The suite files the runs' workloads come from, e.g. "`tools/suite.txt`"."""
    lines = [suite_file.categories_by_line(p) if p.exists() else {} for p in CATEGORY_SOURCES]
    used = {next((i for i, by_line in enumerate(lines) if r["key"] in by_line), None) for r in runs}
    names = [f"`{CATEGORY_SOURCES[i].relative_to(REPO)}`" for i in sorted(i for i in used if i is not None)]
    return " and ".join(names) or "the suite"


def shares_prefix(workload: str) -> bool:
    """A tree spec whose first level has fewer nodes than its leaves shares some prefix; a
    heterogeneous batch shares unless --hetero-shared is 0."""
    words = workload.split()
    if "--hetero" in words:
        return not ("--hetero-shared" in words and float(words[words.index("--hetero-shared") + 1]) == 0)
    if "--tree" not in words:
        return True
    counts = words[words.index("--tree") + 1].split("_")[0].split(",")
    return len(counts) > 1


def run_fields(run):
    """patlab's "run" table as a dict: an object of fields, or (results saved before patlab
    printed field tables as objects) an array of {"field", "value"} rows."""
    if isinstance(run, dict):
        return run
    return {r["field"]: r["value"] for r in run or [] if isinstance(r, dict) and "field" in r}


def geomean(xs):
    xs = [x for x in xs if x and x > 0]
    return math.exp(sum(math.log(x) for x in xs) / len(xs)) if xs else float("nan")


def fmt(x, digits=1):
    return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{x:.{digits}f}"


def best_peer(rows):
    ok = [r for r in rows if r.get("status") == "PASS" and r.get("time_us")]
    return min(ok, key=lambda r: r["time_us"]) if ok else None


def peer_headline(runs, stage: str | None = "pat") -> str:
    """A stage (or, with stage None, the fastest stage of each workload) against the best peer of
    each workload: geometric-mean speedup and wins."""
    def ours(r):
        if stage is None:
            return min(s["time_us"] for s in r["stages"].values())
        return r["stages"][stage]["time_us"] if stage in r["stages"] else None
    pairs = [(ours(r), b) for r in runs if (b := best_peer(r["peers"])) and ours(r)]
    if not pairs:
        return ""
    ratio = geomean([b["time_us"] / t for t, b in pairs])
    wins = sum(1 for t, b in pairs if t < b["time_us"])
    if len(pairs) == len(runs):
        return f"x{ratio:.2f} geometric mean speedup, faster on {wins} of {len(pairs)} workloads"
    return (f"x{ratio:.2f} geometric mean speedup, faster on {wins} of {len(pairs)} "
            f"({len(runs) - len(pairs)} without a peer result)")


def known_categories() -> dict[str, str]:
    """suite line -> category, from the suite files (CATEGORY_SOURCES) that exist."""
    out: dict[str, str] = {}
    for path in CATEGORY_SOURCES:
        if path.exists():
            for line, category in suite_file.categories_by_line(path).items():
                out.setdefault(line, category)
    return out


def time_ratio(run, num: str, den: str):
    """run's time of stage `num` over stage `den` (None when either is missing)."""
    a, b = run["stages"].get(num), run["stages"].get(den)
    return a["time_us"] / b["time_us"] if a and b else None


def category_table(runs) -> list[str]:
    """One row per category: geometric means of stage 7's time over stage 6's, stage 3's and the
    best peer's (below 1: stage 7 is faster)."""
    lines = ["## By category", "",
             "Geometric means of time ratios over each category's workloads (below 1: stage 7 `pat` is "
             "faster); the categories are the `# category:` groups of the suite file.", "",
             "| category | workloads | pat / multistream | pat / splitkv | pat / best peer | with a peer |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    groups: dict[str, list] = {}
    for r in runs:
        groups.setdefault(r["category"], []).append(r)
    for category, rs in groups.items():
        vs6 = geomean([time_ratio(r, "pat", "multistream") for r in rs])
        vs3 = geomean([time_ratio(r, "pat", "splitkv") for r in rs])
        peer = [r["stages"]["pat"]["time_us"] / b["time_us"] for r in rs
                if "pat" in r["stages"] and (b := best_peer(r["peers"]))]
        lines.append(f"| {category} | {len(rs)} | {fmt(vs6, 2)} | {fmt(vs3, 2)} | {fmt(geomean(peer), 2)} | "
                     f"{len(peer)} |")
    return lines


def registry() -> dict[str, tuple[str, str, str]]:
    """slug -> (id, chapter, summary) from the stage registry."""
    out = {}
    pattern = re.compile(r'PATLAB_(?:CPU|GPU)_STAGE\((\d+), (\w+), "([^"]+)", "([^"]+)"\)')
    for m in pattern.finditer((REPO / "reference/include/patlab/stages.def").read_text()):
        out[m.group(2)] = (m.group(1), m.group(3), m.group(4))
    return out


def readme_block(runs, order, results: pathlib.Path, readme: pathlib.Path) -> str:
    """The README's results table: the standard suite's workloads only (`tools/suite.txt`, the count
    the chapters quote), with a pointer to summary.md for the other categories a run has."""
    reg = registry()
    standard = suite_file.categories_by_line(CATEGORY_SOURCES[0]) if CATEGORY_SOURCES[0].exists() else {}
    others = [r for r in runs if r["key"] not in standard]
    if len(others) == len(runs):  # a run of other workloads only: its own table
        others = []
    else:
        runs = [r for r in runs if r["key"] in standard]
    first = runs[0]["run"]
    rel = pathlib.Path("docs/results") / results.name
    cols = [(k, name) for k, name in README_COLUMNS if any(r["key"] == k for r in runs)]
    head = "| # | stage | idea | x vs naive | x vs previous | median % copy | " + " | ".join(
        f"{name} (us)" for _, name in cols) + " |"
    commits, day = provenance(runs)
    lines = [f"Measured on an {first.get('device', '?')}, {day}, {commits}, over the {len(runs)} workloads of "
             f"{suite_names(runs)} (cold L2, median of "
             f"CUDA-event timings; geometric means; `% copy` = effective bandwidth on unique bytes over the "
             f"copy bandwidth measured in the same run). Generated from [{rel}]({rel}/summary.md) by "
             "`tools/summarize_results.py`.", "", head,
             "| ---: | --- | --- | ---: | ---: | ---: |" + " ---: |" * len(cols)]
    prev = None
    for s in order:
        sid, chapter, summary = reg.get(s, ("?", "", ""))
        have = [r for r in runs if s in r["stages"]]
        vs_naive = geomean([r["stages"]["naive"]["time_us"] / r["stages"][s]["time_us"] for r in have])
        vs_prev = geomean([r["stages"][prev]["time_us"] / r["stages"][s]["time_us"] for r in have
                           if prev in r["stages"]]) if prev else None
        pct = sorted(r["stages"][s]["pct_copy"] for r in have)
        times = []
        for key, _ in cols:
            r = next(x for x in runs if x["key"] == key)
            times.append(fmt(r["stages"][s]["time_us"]) if s in r["stages"] else "-")
        # Plain link text: Doxygen 1.9 prints a code span inside link text with its backticks.
        if len(have) < len(runs):  # a stage newer than part of the run: its means cover fewer workloads
            summary += f" (measured on {len(have)} of the {len(runs)} workloads)"
        lines.append(f"| {sid} | [{s}](tutorial/{chapter}.md) | {summary} | {fmt(vs_naive, 2)} | "
                     f"{fmt(vs_prev, 2) if prev else '-'} | {fmt(pct[len(pct) // 2])} | " + " | ".join(times) + " |")
        prev = s
    peer_times = []
    for key, _ in cols:
        r = next(x for x in runs if x["key"] == key)
        b = best_peer(r["peers"])
        peer_times.append(f"{b['time_us']:.1f} ({b['peer']})" if b else "-")
    lines.append(f"| | best peer | {peer_label(runs)} | | | | " + " | ".join(peer_times) + " |")
    headline = peer_headline(runs)
    if headline:
        lines += ["", f"Stage `pat` against the best peer of each workload: {headline}."]
        best = peer_headline(runs, None)
        if "hopper" in order and best:
            lines[-1] += f" The fastest stage of each workload (stage 8 `hopper` where it runs) against it: {best}."
    if others:
        lines += ["", f"The run's {len(others)} other workloads (their categories and ratios) are in "
                      f"[summary.md]({rel}/summary.md)."]
    by_heads = results / "stages_by_heads.png"
    if by_heads.exists():
        lines += ["", f"![every stage on every suite workload, one panel per head configuration]({rel}/stages_by_heads.png)"]
    else:
        lines += ["", f"![every stage on every suite workload]({rel}/stages.png)"]
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("results", type=pathlib.Path, help="folder with patlab.jsonl (and peers.jsonl)")
    p.add_argument("--readme", type=pathlib.Path, help="README to refresh between its results markers")
    a = p.parse_args(argv)
    patlab, peers = load(a.results)
    if not patlab:
        print("summarize: no patlab results", file=sys.stderr)
        return 2
    runs, incomplete = [], []
    categories = known_categories()
    for entry in patlab:
        c = entry.get("compare") or {}
        stages = {r["stage"]: r for r in c.get("results", []) if isinstance(r.get("time_us"), (int, float))}
        run = run_fields(c.get("run"))
        category = entry.get("category") or categories.get(entry["key"], suite_file.DEFAULT_CATEGORY)
        record = {"key": entry["key"], "category": category, "stages": stages, "run": run,
                  "peers": peers.get(entry["key"], [])}
        (runs if all(s in stages for s in REQUIRED_STAGES) else incomplete).append(record)
    if not runs:
        print(f"summarize: no run has the stages {', '.join(REQUIRED_STAGES)}", file=sys.stderr)
        return 2
    # Every stage that ran, in registry order: `patlab compare` lists its stages by id, so the run
    # with the most stages gives the order (a stage added in a later part lands in its place).
    widest = list(max(runs, key=lambda r: len(r["stages"]))["stages"])
    order = sorted(dict.fromkeys(s for r in runs for s in r["stages"]),
                   key=lambda s: (widest.index(s) if s in widest else len(widest)))
    first_run = runs[0]["run"]
    commits, day = provenance(runs)
    lines = [f"# Suite summary: {len(runs)} workloads",
             "",
             f"Device: {first_run.get('device', '?')}, driver {first_run.get('driver', '?')}; {commits}; {day}. "
             f"{first_run.get('timing', '')}; L2 {first_run.get('L2', '')}. Generated by "
             "`tools/summarize_results.py` from patlab.jsonl and peers.jsonl in this folder.",
             "",
             "## Stages over the whole suite",
             "",
             "Geometric means over all workloads; `% copy` is the effective bandwidth on unique bytes "
             "(unique KV + q + output) over the device-to-device copy bandwidth measured in the same run.",
             "",
             "| stage | x vs naive | x vs previous | x vs splitkv | median % copy | best % copy |",
             "| --- | ---: | ---: | ---: | ---: | ---: |"]
    prev = None
    for s in order:
        vs_naive = geomean([r["stages"]["naive"]["time_us"] / r["stages"][s]["time_us"] for r in runs if s in r["stages"]])
        vs_prev = geomean([r["stages"][prev]["time_us"] / r["stages"][s]["time_us"] for r in runs if s in r["stages"] and prev in r["stages"]]) if prev else None
        vs_3 = geomean([r["stages"]["splitkv"]["time_us"] / r["stages"][s]["time_us"] for r in runs if s in r["stages"]])
        pct = sorted(r["stages"][s]["pct_copy"] for r in runs if s in r["stages"])
        n = sum(1 for r in runs if s in r["stages"])
        label = s if n == len(runs) else f"{s} ({n} of {len(runs)} workloads)"
        lines.append(f"| {label} | {fmt(vs_naive, 2)} | {fmt(vs_prev, 2)} | {fmt(vs_3, 2)} | {fmt(pct[len(pct) // 2])} | "
                     f"{fmt(pct[-1])} |")
        prev = s
    headline = peer_headline(runs)
    if headline:
        lines += ["", f"Stage `pat` against the best peer of each workload ({peer_label(runs)}): {headline}."]
        best = peer_headline(runs, None)
        if "hopper" in order and best:
            lines += ["", f"The fastest stage of each workload against the best peer: {best}."]
    if incomplete:
        lines += ["", f"Left out of every table ({len(incomplete)}; a stage of {', '.join(REQUIRED_STAGES)} has no "
                      "time): " + ", ".join(f"`{r['key']}`" for r in incomplete) + "."]
    lines += [""] + category_table(runs)

    # Targets of the issue, checked on every workload.
    # Headings without code spans: Doxygen shows them as <tt> tags in its navigation tree.
    lines += ["", "## Targets of stage 7 (pat)", ""]
    slower = [(r["key"], 100 * (r["stages"]["pat"]["time_us"] / r["stages"]["splitkv"]["time_us"] - 1)) for r in runs]
    worst = max(slower, key=lambda x: x[1])
    n_slow = sum(1 for _, x in slower if x > TARGET_SLOWER_PCT)
    n_faster = sum(1 for _, x in slower if x < 0)
    lines.append(f"- Never more than {TARGET_SLOWER_PCT:.0f}% slower than stage 3: "
                 f"{'met' if n_slow == 0 else f'missed on {n_slow} workloads'}; faster on {n_faster} of "
                 f"{len(slower)} workloads (closest: {worst[0]}, {worst[1]:+.1f}% time against splitkv).")
    sharing = [r for r in runs if shares_prefix(r["key"])]
    no_gain = [r["key"] for r in sharing if r["stages"]["pat"]["time_us"] >= r["stages"]["splitkv"]["time_us"]]
    low = min(sharing, key=lambda r: r["stages"]["splitkv"]["time_us"] / r["stages"]["pat"]["time_us"])
    lines.append(f"- A speedup over stage 3 on every tree with sharing: "
                 f"{'met' if not no_gain else 'missed on ' + ', '.join(no_gain)} ({len(sharing)} workloads; smallest "
                 f"x{low['stages']['splitkv']['time_us'] / low['stages']['pat']['time_us']:.2f} on {low['key']}).")
    big = [r for r in sharing if r["stages"]["pat"]["unique_bytes"] >= TARGET_UNIQUE_BYTES]
    met = [r for r in big if r["stages"]["pat"]["pct_copy"] >= TARGET_COPY_PCT]
    lines.append(f"- At least {TARGET_COPY_PCT:.0f}% of the copy bandwidth on unique bytes where the shared-prefix "
                 f"workload's unique KV is >= {TARGET_UNIQUE_BYTES / 1e6:.0f} MB: met on {len(met)} of {len(big)}. "
                 "The table lists the misses with the bytes the plan must read (model bytes) next to the unique "
                 "bytes: `% copy on model bytes` is how close the kernels run to the copy bandwidth on what the "
                 "plan reads, `model / unique` is how many times the plan reads the unique bytes.")
    lines += ["", "| workload | unique MB | pat us | % copy (unique) | model / unique | % copy (model bytes) |",
              "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for r in sorted(big, key=lambda r: r["stages"]["pat"]["pct_copy"]):
        s = r["stages"]["pat"]
        if s["pct_copy"] >= TARGET_COPY_PCT:
            continue
        model_ratio = s["model_bytes"] / s["unique_bytes"]
        lines.append(f"| `{r['key']}` | {s['unique_bytes'] / 1e6:.0f} | {s['time_us']:.1f} | {s['pct_copy']:.1f} | "
                     f"{model_ratio:.2f} | {s['pct_copy'] * model_ratio:.1f} |")

    lines += ["", "## Chosen workloads", ""]
    for key in HIGHLIGHTS:
        r = next((x for x in runs if x["key"] == key), None)
        if r is None:
            continue
        lines += [f"### {key}", "", f"{r['run'].get('workload', '')}, {r['run'].get('shape', '')}; unique bytes "
                                       f"{r['stages']['pat']['unique_bytes'] / 1e6:.1f} MB; copy "
                                       f"{r['run'].get('copy GB/s', '?')} GB/s.", "",
                  "| stage / peer | time us | % copy | x vs naive | x vs previous | notes |",
                  "| --- | ---: | ---: | ---: | ---: | --- |"]
        prev = None
        for s in order:
            if s not in r["stages"]:
                continue
            st = r["stages"][s]
            lines.append(f"| {s} | {st['time_us']:.1f} | {st['pct_copy']:.1f} | "
                         f"{r['stages']['naive']['time_us'] / st['time_us']:.2f} | "
                         f"{fmt(r['stages'][prev]['time_us'] / st['time_us'], 2) if prev else '-'} | {st['notes']} |")
            prev = s
        for peer in r["peers"]:
            if peer.get("status") == "PASS":
                lines.append(f"| peer {peer['peer']} | {peer['time_us']:.1f} | {fmt(peer.get('pct_copy'))} | "
                             f"{r['stages']['naive']['time_us'] / peer['time_us']:.2f} | - | {peer.get('notes', '')} |")
            else:
                lines.append(f"| peer {peer['peer']} | - | - | - | - | {peer.get('check', peer.get('status'))} |")
        lines.append("")
    (a.results / "summary.md").write_text("\n".join(lines) + "\n")
    print(f"summarize: wrote {a.results / 'summary.md'}")
    suite_jsons = [str(f / "suite.json") for f in sources(a.results) if (f / "suite.json").exists()]
    if suite_jsons:  # the README's figure: one panel per head configuration
        import subprocess
        subprocess.run([sys.executable, str(REPO / "tools/figures/stages_by_heads.py"), *suite_jsons,
                        str(a.results / "stages_by_heads.png")], check=False)
    if a.readme:
        text = a.readme.read_text()
        if README_BEGIN not in text or README_END not in text:
            print(f"summarize: {a.readme} has no {README_BEGIN} ... {README_END} block", file=sys.stderr)
            return 2
        before, rest = text.split(README_BEGIN, 1)
        after = rest.split(README_END, 1)[1]
        block = readme_block(runs, order, a.results, a.readme)
        a.readme.write_text(before + README_BEGIN + "\n" + block + "\n" + README_END + after)
        print(f"summarize: refreshed the results table of {a.readme}")

    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("summarize: matplotlib missing: no plot", file=sys.stderr)
        return 0
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(16, 9), sharex=True)
    xs = list(range(len(runs)))
    colors = plt.cm.viridis([i / max(1, len(order) - 1) for i in range(len(order))])
    for s, color in zip(order, colors):
        ax1.plot(xs, [r["stages"]["splitkv"]["time_us"] / r["stages"][s]["time_us"] if s in r["stages"] else None
                      for r in runs], marker=".", lw=1, color=color, label=s)
        ax2.plot(xs, [r["stages"][s]["pct_copy"] if s in r["stages"] else None for r in runs], marker=".", lw=1,
                 color=color, label=s)
    peer_speed = [r["stages"]["splitkv"]["time_us"] / b["time_us"] if (b := best_peer(r["peers"])) else float("nan")
                  for r in runs]
    peer_pct = [b.get("pct_copy", float("nan")) if (b := best_peer(r["peers"])) else float("nan") for r in runs]
    ax1.plot(xs, peer_speed, "k--", lw=1, label="best peer")
    ax2.plot(xs, peer_pct, "k--", lw=1, label="best peer")
    ax1.set_yscale("log")
    ax1.set_ylabel("speedup over stage 3 (splitkv)")
    ax2.set_ylabel("% of copy bandwidth\non unique bytes")
    ax2.axhline(TARGET_COPY_PCT, color="grey", lw=0.5)
    ax1.legend(ncol=4, fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.grid(alpha=0.3)
    ax2.set_xticks(xs)
    ax2.set_xticklabels([r["key"].replace("--tree ", "").replace(" --heads ", " ") for r in runs], rotation=90,
                        fontsize=6)
    ax1.set_title(f"patlab stages on the suite, {first_run.get('device', '')}, {commits}, {day} (cold L2)",
                  fontsize=9)
    fig.tight_layout()
    fig.savefig(a.results / "stages.png", dpi=110)
    print(f"summarize: wrote {a.results / 'stages.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
