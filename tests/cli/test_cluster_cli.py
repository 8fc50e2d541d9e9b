#!/usr/bin/env python3
"""`patlab plan --cluster`'s contract (stage 9's host half, issue 13): without --hopper-tiles or
with --incremental it gives exit 2 and one line naming the problem; with them it prints the cluster
summary and the pack groups, in every format, and its numbers hang together: the suite's large
prefix (1,1024_2048,32 at 64/8) takes clusters of 4 and reads its prefix 16 times per KV head
instead of 64, no sharing takes none and saves nothing, and --packs lists every group. `patlab
bench` models stage 9 at its own default, no multicast (--max-cluster 1), unless --max-cluster says
otherwise.

Usage: test_cluster_cli.py PATH/TO/patlab
"""
import json
import subprocess
import sys

from cli_checks import check, failures
import cli_checks

PATLAB = sys.argv[1] if len(sys.argv) > 1 else "patlab"
PREFIX = ["--tree", "1,1024_2048,32", "--heads", "64/8", "--quiet"]
NO_SHARING = ["--tree", "64_4096", "--heads", "32/8", "--quiet"]
# K and V of one token over 8 KV heads at d = 128, fp16.
TOKEN_BYTES = 2 * 8 * 128 * 2


def run(args):
    return subprocess.run([PATLAB, "plan"] + args, capture_output=True, text=True, timeout=300)


def plan_json(name, args):
    p = run(args + ["--format", "json"])
    check(f"{name}: exit 0 with JSON", p.returncode == 0, p.stderr)
    return json.loads(p.stdout) if p.returncode == 0 else {}


def main():
    cli_checks.expect_error("--cluster without --hopper-tiles", run(PREFIX + ["--cluster"]),
                            "--cluster multicasts into stage 8's tiles: add --hopper-tiles", no_stdout=True)
    cli_checks.expect_error("--cluster with --incremental",
                            run(PREFIX + ["--cluster", "--hopper-tiles", "--incremental", "4"]),
                            "--cluster reports one plan; it does not go with --incremental", no_stdout=True)

    doc = plan_json("large prefix", PREFIX + ["--hopper-tiles", "--cluster"])
    summary, groups = doc.get("cluster", {}), doc.get("clusters", [])
    check("large prefix: launch cluster 4", summary.get("launch cluster size") == 4, str(summary))
    check("large prefix: slots 132, 132, 128", summary.get("CTA slots by cluster size") == "1: 132, 2: 132, 4: 128",
          str(summary))
    prefix = [g for g in groups if g.get("tokens") == "[0, 2048)"]
    check("large prefix: the prefix group has 64 packs, cluster 4, 16 reads",
          len(prefix) == 1 and prefix[0]["packs"] == 64 and prefix[0]["cluster"] == 4
          and prefix[0]["clustered reads"] == 16, str(prefix))
    saved = summary.get("KV bytes into the SMs, one CTA per pack", 0) - \
        summary.get("KV bytes into the SMs, one read per cluster", 0)
    check("large prefix: 48 reads of the prefix saved", saved == 48 * 2048 * TOKEN_BYTES, str(saved))
    check("large prefix: model bytes fall by the same",
          summary.get("model bytes (HBM, L2 re-reads charged), no clusters", 0) -
          summary.get("model bytes with clusters", 0) == saved, str(summary))
    check("large prefix: items, entries (the prefix) and solo items (the suffixes)",
          summary.get("work items (pack slices x KV head)") == 16 * 8 + 1024 * 8
          and summary.get("entries (multicast items, what one cluster pulls)") == 16 * 8
          and summary.get("solo items (1 CTA, what one CTA pulls)") == 1024 * 8, str(summary))
    check("large prefix: the schedule within its bound",
          summary.get("pull schedule, last item's end (KV tokens)", 1) <=
          summary.get("list bound (CTA time / CTA slots + longest)", 0), str(summary))
    check("large prefix: 12 groups shown without --packs", len(groups) == 12, str(len(groups)))

    doc = plan_json("no sharing", NO_SHARING + ["--hopper-tiles", "--cluster", "--packs"])
    summary, groups = doc.get("cluster", {}), doc.get("clusters", [])
    check("no sharing: cluster 1 everywhere, nothing saved",
          summary.get("launch cluster size") == 1 and all(g["cluster"] == 1 for g in groups)
          and summary.get("model bytes with clusters") == summary.get("model bytes (HBM, L2 re-reads charged), no clusters"),
          str(summary))
    check("no sharing: --packs lists every group", len(groups) == summary.get("pack groups (packs reading one KV range)"),
          str(len(groups)))
    # Stage 9 plans for its one CTA kind, the 128-row CTA (one per SM at d = 128): the KV split of
    # `plan --cluster` is the one stage 9 runs, not the one of three 16x64 CTAs per SM (752 CTAs).
    check("no sharing: the KV split of one 128-row CTA per SM (512 CTAs, uncut)",
          doc.get("plan", {}).get("CTAs (packs x KV heads)") == 512
          and "132 slots (1 per SM)" in doc.get("plan", {}).get("wave fill", ""), str(doc.get("plan", {})))
    slots3 = plan_json("no sharing, --ctas-per-sm 3",
                       NO_SHARING + ["--hopper-tiles", "--cluster", "--ctas-per-sm", "3"]).get("plan", {})
    check("no sharing: --ctas-per-sm still overrides it", slots3.get("CTAs (packs x KV heads)") == 752
          and "396 slots (3 per SM)" in slots3.get("wave fill", ""), str(slots3))

    doc = plan_json("--max-cluster 2", PREFIX + ["--hopper-tiles", "--cluster", "--max-cluster", "2"])
    summary = doc.get("cluster", {})
    check("--max-cluster 2: the prefix in clusters of 2 (32 per KV head)",
          summary.get("launch cluster size") == 2
          and summary.get("entries (multicast items, what one cluster pulls)") == 32 * 8, str(summary))
    doc = plan_json("--max-cluster 1", PREFIX + ["--hopper-tiles", "--cluster", "--max-cluster", "1"])
    summary = doc.get("cluster", {})
    check("--max-cluster 1: no multicast, every item solo",
          summary.get("launch cluster size") == 1 and summary.get("entries (multicast items, what one cluster pulls)") == 0
          and summary.get("KV bytes into the SMs, one read per cluster") == summary.get("KV bytes into the SMs, one CTA per pack"),
          str(summary))
    # Stage 9 runs at --max-cluster 1 unless told (kStagesMaxCluster): bench's model of it (its CPU
    # mode's prediction) is the cap-1 plan's, and --max-cluster 4 brings back the model's clusters.
    predicted = {}
    for cap in ("default", "1", "4"):
        extra = [] if cap == "default" else ["--max-cluster", cap]
        p = subprocess.run([PATLAB, "bench"] + PREFIX + ["--stage", "cluster", "--format", "json"] + extra,
                           capture_output=True, text=True, timeout=300)
        rows = json.loads(p.stdout).get("prediction", []) if p.returncode in (0, 77) and p.stdout else []
        predicted[cap] = rows[0] if rows else {}
        check(f"bench --stage cluster ({cap} cap): one prediction row", len(rows) == 1, p.stderr[-300:])
    check("bench: stage 9's default is no multicast, as --max-cluster 1",
          predicted["default"].get("model_bytes") == predicted["1"].get("model_bytes")
          and "no multicast (--max-cluster 1)" in predicted["default"].get("notes", ""), str(predicted))
    check("bench --max-cluster 4: the prefix's 48 reads saved, as plan --cluster says",
          predicted["1"].get("model_bytes", 0) - predicted["4"].get("model_bytes", 0) == 48 * 2048 * TOKEN_BYTES
          and "in clusters of up to 4" in predicted["4"].get("notes", ""), str(predicted))
    for cmd in (["plan", "--hopper-tiles", "--cluster"], ["bench", "--stage", "cluster"], ["compare"]):
        p = subprocess.run([PATLAB] + cmd + ["--tree", "1,4_64,8", "--max-cluster", "3"], capture_output=True, text=True,
                           timeout=120)
        lines = p.stderr.strip().splitlines()
        check(f"{cmd[0]} --max-cluster 3: one line, exit 2",
              p.returncode == 2 and len(lines) == 1 and "--max-cluster must be 1, 2 or 4" in lines[0], p.stderr)

    doc = plan_json("--pulls", PREFIX + ["--hopper-tiles", "--cluster", "--pulls"])
    pulls, summary = doc.get("pulls", []), doc.get("cluster", {})
    check("--pulls: one row per work item, multicast items first, the last end is the schedule's",
          len(pulls) == summary.get("work items (pack slices x KV head)")
          and [r["part"] for r in pulls] == sorted((r["part"] for r in pulls), key=lambda p: p != "multicast")
          and max(r["end"] for r in pulls) == summary.get("pull schedule, last item's end (KV tokens)"),
          str(pulls[:2]))
    p = run(PREFIX + ["--pulls"])
    check("--pulls without --cluster: one line, exit 2",
          p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1 and "add --cluster" in p.stderr, p.stderr)

    for fmt in ("table", "csv", "jsonl", "markdown"):
        p = run(PREFIX + ["--hopper-tiles", "--cluster", "--format", fmt])
        check(f"--cluster --format {fmt}", p.returncode == 0 and "launch cluster size" in p.stdout, p.stderr)
    print(f"{len(failures)} failed" if failures else "all passed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
