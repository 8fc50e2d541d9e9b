#!/usr/bin/env python3
"""The wave tail of one kernel in a CTA trace (`patlab bench --cta-trace`): for the kernel whose
CTAs end last (or --kernel), per traced run, its CTAs, how many each SM ran, the first CTA that
started after another CTA of the same kernel ended on its SM (the last round's start), the time
from it to the kernel's end as a fraction of the stage's span (first start of any kernel to last
end), the mean number of SMs busy with that kernel during that last round, and the mean number of
SMs busy with a CTA of any kernel then (so whether the other SMs idle). With --kernels, per kernel
of each run: its CTAs, first start, last end and mean CTA time.

    python3 tail.py TRACE.csv [--kernel NAME] [--kernels]
"""
import argparse
import collections
import csv
import sys


def busy_sms(ctas, lo, hi):
    """Mean number of SMs running at least one CTA (of any kernel) over [lo, hi]."""
    per_sm = collections.defaultdict(list)
    for _, sm, s, e in ctas:
        if e > lo and s < hi:
            per_sm[sm].append((max(s, lo), min(e, hi)))
    total = 0.0
    for spans in per_sm.values():
        spans.sort()
        cur_s, cur_e = spans[0]
        for s, e in spans[1:]:
            if s > cur_e:
                total += cur_e - cur_s
                cur_s, cur_e = s, e
            else:
                cur_e = max(cur_e, e)
        total += cur_e - cur_s
    return total / (hi - lo)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("trace")
    ap.add_argument("--kernel", help="the kernel to look at (default: the one whose CTAs end last)")
    ap.add_argument("--kernels", action="store_true", help="also one line per kernel of each run")
    args = ap.parse_args()
    runs = collections.defaultdict(list)
    try:
        with open(args.trace, newline="") as f:
            for r in csv.DictReader(f):
                runs[int(r["run"])].append((r["kernel"], int(r["sm"]), float(r["start_us"]), float(r["end_us"])))
    except (OSError, KeyError, ValueError) as e:
        sys.exit(f"tail.py: {args.trace}: not a CTA trace ({e})")
    if not runs:
        sys.exit(f"tail.py: {args.trace}: no CTAs")
    print("run | kernel | CTAs | SMs (most per SM) | span us | last round from us | last round / span | "
          "SMs busy in it (mean) | SMs busy with any kernel in it (mean)")
    for run, ctas in sorted(runs.items()):
        begin = min(c[2] for c in ctas)
        end = max(c[3] for c in ctas)
        kernel = args.kernel or max(ctas, key=lambda c: c[3])[0]
        mine = sorted((c for c in ctas if c[0] == kernel), key=lambda c: c[2])
        if not mine:
            sys.exit(f"tail.py: no CTA of kernel {kernel!r} in run {run}")
        per_sm = collections.Counter(c[1] for c in mine)
        first_end = {}
        last_round = None
        for k, sm, s, e in mine:
            if sm in first_end and s >= first_end[sm] and last_round is None:
                last_round = s
            first_end[sm] = min(first_end.get(sm, e), e)
        k_end = max(c[3] for c in mine)
        if last_round is None:
            busy = any_busy = "-"
            frac = 0.0
            lr = "-"
        else:
            # mean SMs running a CTA of the kernel over [last_round, k_end]
            area = sum(max(0.0, min(e, k_end) - max(s, last_round)) for _, _, s, e in mine)
            busy = f"{area / (k_end - last_round):.1f}"
            any_busy = f"{busy_sms(ctas, last_round, k_end):.1f}"
            frac = (k_end - last_round) / (end - begin)
            lr = f"{last_round - begin:.1f}"
        print(f"{run} | {kernel} | {len(mine)} | {len(per_sm)} ({max(per_sm.values())}) | {end - begin:.1f} | {lr} | "
              f"{frac:.2f} | {busy} | {any_busy}")
    if args.kernels:
        print()
        print("run | kernel | CTAs | first start us | last end us | mean CTA us")
        for run, ctas in sorted(runs.items()):
            begin = min(c[2] for c in ctas)
            for kernel in sorted({c[0] for c in ctas}):
                mine = [c for c in ctas if c[0] == kernel]
                mean = sum(c[3] - c[2] for c in mine) / len(mine)
                print(f"{run} | {kernel} | {len(mine)} | {min(c[2] for c in mine) - begin:.1f} | "
                      f"{max(c[3] for c in mine) - begin:.1f} | {mean:.1f}")


if __name__ == "__main__":
    main()
