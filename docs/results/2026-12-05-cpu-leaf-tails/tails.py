#!/usr/bin/env python3
"""What absorbing short leaf packs into their parent's pack would remove from stage 7's and stage
8's plans (a CPU model; no kernel does this yet). See README.md for the rule and the reading.

For every suite line (tools/suite.txt then tools/suite-categories.txt, numbered as the suite
runs number them) that issue 12 counts in RUN_FOLDER (a suite run with stages pat and hopper:
KV shared, at least 128 MB unique bytes), plans the workload with `PATLAB plan W --packs --format
json` (stage 7's plan) and with `--hopper-tiles` added (stage 8's), applies the rule, and prints one
row per line and plan: CTAs, partial slots, queries merged, partial bytes (written and read back)
before and after, the tail tokens the parents gain, and the stage's measured time and % of the
copy bandwidth from RUN_FOLDER.
   tails.py PATLAB RUN_FOLDER [--flatten] [--cap-leaf TOKENS] [--cap-growth X] [--cap-tokens T] [--lines N,...]"""
import argparse
import collections
import json
import pathlib
import statistics
import subprocess
import sys

REPO = pathlib.Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "tools"))
import roofline  # noqa: E402  (tools/roofline.py: reads a bench's jsonl rows)
import bench_rows  # noqa: E402  (tools/bench_rows.py: issue 12's selection of a line)
import suite_file  # noqa: E402  (tools/suite_file.py: the suite files' format)



def suite_lines():
    """The suite's workload lines in the suite runs' numbering (1-based): tools/suite_file.py's entries."""
    return [wl for name in ("tools/suite.txt", "tools/suite-categories.txt")
            for _, wl in suite_file.read_entries(REPO / name)]


def measured(folder, n):
    """(run record, {stage: results record}) of suite line n (tools/roofline.py's reader), or None."""
    f = pathlib.Path(folder) / "suite" / f"{n}.jsonl"
    if not f.exists():
        return None
    runs, results = roofline.read_rows([str(f)])
    (workload, run), = runs.items()
    return run, {stage: r for stage, r in results.get(workload, {}).items() if r.get("time_us") is not None}


def plan(patlab, wl, hopper):
    cmd = [patlab, "plan", *wl.split(), "--packs", "--format", "json", "--quiet"] + (["--hopper-tiles"] if hopper else [])
    return json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)


def shape_numbers(shape):
    """(Hq, Hkv, d, page) from a plan's shape field, e.g. '64/8 heads, d=128, page 16, fp16'."""
    heads, d, page = shape.split(", ")[:3]
    hq, hkv = heads.split()[0].split("/")
    return int(hq), int(hkv), int(d.split("=")[1]), int(page.split()[1])


def absorb(packs, page, cap_leaf, cap_growth, cap_tokens, flatten=False):
    """Applies the rule to a plan's packs; returns the statistics before and after."""
    def fits(own, tails):  # the fused range: at most cap_growth x its own, or cap_tokens, whichever is more
        return own + tails <= max(cap_growth * own, cap_tokens)

    parsed = []
    for p in packs:
        a, b = (int(x) for x in p["tokens"].strip("[)").split(", "))
        parsed.append((p["tile"], a, b, [int(q) for q in str(p["queries"]).split()]))
    end = collections.defaultdict(int)  # each query's last token (its request's length)
    for _, a, b, qs in parsed:
        for q in qs:
            end[q] = max(end[q], b)
    ending = {}  # (query, end token) -> pack: the query's pack that ends there (one: packs partition its tokens)
    for i, (_, a, b, qs) in enumerate(parsed):
        for q in qs:
            ending[(q, b)] = i
    growth = collections.defaultdict(int)  # parent -> tail tokens absorbed (each leaf from a page boundary)
    absorbed = set()
    by_kernel = collections.Counter()

    def stats(keep):
        slots = collections.Counter()
        for i, (_, a, b, qs) in enumerate(parsed):
            if i in keep:
                for q in qs:
                    slots[q] += 1
        merged = [k for k in slots.values() if k > 1]
        return {"packs": len(keep), "entries": sum(slots.values()), "merged": len(merged),
                "merged_entries": sum(merged)}

    if flatten:  # first the subtrees, then (below) the leaves of the packs whose subtree did not fit
        # each query's packs in token order; a pack P takes every later pack of its queries when all of them
        # hold only P's queries and none all of them (the subtree under P, whose queries P already packs; a
        # pack of all of them is a later piece of P's own range), within the cap
        chains = collections.defaultdict(list)
        for i, (_, a, b, qs) in enumerate(parsed):
            for q in qs:
                chains[q].append((a, i))
        for q in chains:
            chains[q].sort()
        for par in sorted(range(len(parsed)), key=lambda i: parsed[i][1]):
            if par in absorbed:
                continue
            ptile, pa, pb, pqs = parsed[par]
            qset = set(pqs)
            later = set()
            ok = True
            for q in pqs:
                after = [i for a, i in chains[q] if a >= pb]
                # a later pack of exactly P's queries is a KV piece of P's own range: only its last piece takes
                if any(not set(parsed[i][3]) <= qset or set(parsed[i][3]) == qset or i in absorbed for i in after):
                    ok = False
                    break
                later.update(after)
            if not ok or not later:
                continue
            tokens = sum(-(-(parsed[i][2] - parsed[i][1]) // page) * page for i in later)
            if not fits(pb - pa, tokens):
                continue
            growth[par] = tokens
            absorbed.update(later)
            by_kernel["hopper" if ptile.endswith("h") else "pack"] += len(later)

    # leaf packs of a query's last tokens, taken by the pack that ends where they begin, within the cap
    for i, (tile, a, b, qs) in enumerate(parsed):
        if i in absorbed or b - a > cap_leaf or any(end[q] != b for q in qs):
            continue
        parents = {ending.get((q, a)) for q in qs}
        if len(parents) != 1 or None in parents or parents <= absorbed:
            continue
        par = parents.pop()
        ptile, pa, pb, pqs = parsed[par]
        padded = -(-(b - a) // page) * page
        if not fits(pb - pa, growth[par] + padded):
            continue
        growth[par] += padded
        absorbed.add(i)
        by_kernel["hopper" if ptile.endswith("h") else "pack"] += 1

    before = stats(set(range(len(parsed))))
    after = stats(set(range(len(parsed))) - absorbed)
    parents = len(growth)
    parent_tokens = sum(parsed[p][2] - parsed[p][1] for p in growth)
    return before, after, by_kernel, parents, sum(growth.values()), parent_tokens


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("patlab")
    ap.add_argument("run_folder")
    ap.add_argument("--cap-leaf", type=int, default=64, help="longest leaf pack absorbed, tokens (default 64)")
    ap.add_argument("--cap-growth", type=float, default=2.0,
                    help="a fused pack's range (its own and the tails) at most this multiple of its own (default 2) ...")
    ap.add_argument("--cap-tokens", type=int, default=1024,
                    help="... or at most this many tokens, whichever is more (default 1024)")
    ap.add_argument("--flatten", action="store_true",
                    help="rule 2: first a pack takes every later pack of its queries that holds only its queries "
                         "(the subtree under it), then the leaf rule applies to what is left")
    ap.add_argument("--lines", default="", help="only these suite lines (comma-separated numbers)")
    args = ap.parse_args()
    only = {int(x) for x in args.lines.split(",") if x}
    what = "later packs holding only its queries, then leaf packs (--flatten)" if args.flatten else \
        f"leaf packs of at most {args.cap_leaf} tokens"
    print(f"rule: a pack takes {what}; the fused range at most {args.cap_growth:g}x its own or "
          f"{args.cap_tokens} tokens, whichever is more")
    print("| line | workload | plan | CTAs | CTAs after | slots | slots after | queries merged | after | "
          "partial MB | after | parents | tail / parent range | stage us | % copy |")
    print("|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    fractions = collections.defaultdict(list)
    for n, wl in enumerate(suite_lines(), start=1):
        if only and n not in only:
            continue
        m = measured(args.run_folder, n)
        if m is None:
            continue
        run, stages = m
        if not bench_rows.issue12_line(run):
            continue
        for stage, hopper in (("pat", False), ("hopper", True)):
            p = plan(args.patlab, wl, hopper)
            hq, hkv, d, page = shape_numbers(p["plan"]["shape"])
            before, after, kernels, parents, tail, parent_tokens = absorb(p["packs"], page, args.cap_leaf,
                                                                          args.cap_growth, args.cap_tokens, args.flatten)
            per_entry = hq * (4 * d + 4) * 2 / 1e6  # o and lse of every q head, written and read
            s = stages.get(stage)
            kern = "+".join(f"{k} {v}" for k, v in sorted(kernels.items())) or "-"
            print(f"| {n} | `{wl}` | {stage} ({kern}) | {before['packs'] * hkv} | {after['packs'] * hkv} | "
                  f"{before['entries']} | {after['entries']} | {before['merged']} | {after['merged']} | "
                  f"{before['merged_entries'] * per_entry:.1f} | {after['merged_entries'] * per_entry:.1f} | "
                  f"{parents} | {tail / parent_tokens if parent_tokens else 0:.2f} | "
                  f"{s['time_us'] if s else float('nan'):.1f} | {s['pct_copy'] if s else float('nan'):.1f} |")
            if s:
                fractions[stage].append((s["pct_copy"], after["packs"] < before["packs"]))
            sys.stdout.flush()
    for stage, rows in fractions.items():
        touched = [pct for pct, t in rows if t]
        print(f"{stage}: {len(rows)} lines, {len(touched)} whose plan the rule changes; median % copy of those "
              f"{statistics.median(touched) if touched else float('nan'):.1f}, of the others "
              f"{statistics.median([p for p, t in rows if not t]) if len(touched) < len(rows) else float('nan'):.1f}")
        # sizing only: the median if every changed line ran f times faster and the others as measured
        for f in (1.2, 1.35, 1.5):
            v = [pct * (f if t else 1) for pct, t in rows]
            print(f"  changed lines x{f:g}: median {statistics.median(v):.1f}, {sum(x < 50 for x in v)} under 50%")


if __name__ == "__main__":
    main()
