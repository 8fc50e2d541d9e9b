#!/usr/bin/env python3
"""Stage 8's producer/consumer pipeline as a timeline: a model, not a measurement. One 128-row
CTA: a producer thread copying K/V tiles into a ring of STAGES stages, two consumer warpgroups
sharing one tensor pipe, drawn for three consumers:

  serial     per tile: S = Q K^T, softmax, O += P V, release (stage 9's consumer);
  pipelined  S_i and P_{i-1} V_{i-1} in one batch, the row max under the P V, the exponentials
             after it (stage 8's consumer as ptxas compiles it: it waits before the exponentials);
  ideal      the same with the exponentials under the P V too (what the source asks for).

The model's rules, each a stated assumption: a copy lands TMA cycles after it is issued and is
issued once both warpgroups released the stage's previous tile; the tensor pipe runs one GEMM at
a time (one warpgroup's 64 x 64 x 128 GEMM: GEMM cycles), each in the first free gap from the
cycle it is asked for; each warpgroup's softmax runs on its own warps (MAX cycles for the row
max, EXP for the exponentials, sums, conversion and rescale), with no issue contention between
the warpgroups. The defaults: GEMM 256 cycles is the H200's dense fp16 peak (2048 FMA per SM per
cycle); MAX and EXP split the softmax's ~400 instructions per warp per tile that Nsight Compute
counted (docs/results/2026-12-02-h200-stage8-ring); TMA 1000 cycles is an L2-hit copy under load
(an assumption). The model's cycles per tile are printed; the measured ones (about 2450 at
1.75 GHz under the profiler) are almost twice any of the three: what the model leaves out (issue
contention, the long-scoreboard waits the profile shows) is that much of the time.

    python3 tools/figures/hopper_pipeline.py OUT.png [--tiles N] [--stages S] [--tma C] [--gemm C]
                                             [--max C] [--exp C]
"""
import argparse

import figures_common as fc

CONSUMERS = 2
COLORS = {"copy": "0.70", "QK": "tab:blue", "PV": "tab:orange", "max": "tab:green", "exp": "tab:olive",
          "wait": "white"}


def simulate(mode, tiles, stages, tma, gemm, t_max, t_exp):
    """Bars (row, start, end, kind, label) of one run, and the cycle the last warpgroup finishes."""
    bars = []
    full = {}                           # tile -> cycle its copy landed
    released = {}                       # (tile, warpgroup) -> cycle the warpgroup released it
    busy = []                           # the tensor pipe's (start, end) intervals, sorted

    def issue_copies():
        """The producer issues every copy whose stage is free, in order (called as releases come)."""
        t = len(full)
        while t < tiles:
            if t >= stages:
                rel = [released.get((t - stages, g)) for g in range(CONSUMERS)]
                if None in rel:
                    return
                start = max(max(rel), full[t - 1] - tma)
            else:
                start = 0 if t == 0 else full[t - 1] - tma
            full[t] = start + tma
            bars.append(("producer", start, start + tma, "copy", f"K{t} V{t} (stage {t % stages})"))
            t += 1

    def gemm_at(ready, g, kind, t):
        """The GEMM in the tensor pipe's first free gap from `ready` on; returns its end."""
        start = ready
        for b0, b1 in busy:
            if b1 <= start:
                continue
            if b0 >= start + gemm:
                break
            start = b1
        busy.append((start, start + gemm))
        busy.sort()
        bars.append(("tensor pipe", start, start + gemm, kind, f"{kind}{t}"))
        bars.append((f"warpgroup {g + 1}", ready, start + gemm, "wait", ""))
        return start + gemm

    def alu(start, g, kind, dur, t):
        bars.append((f"warpgroup {g + 1}", start, start + dur, kind, f"{kind}{t}" if kind == "exp" else ""))
        return start + dur

    # Each warpgroup is a program run step by step; the one that can go on earliest goes next, so
    # the tensor pipe serves the two in the order they ask.
    def program(g):
        now = 0
        if mode == "serial":
            for t in range(tiles):
                now = max(now, (yield ("full", t)))
                now = gemm_at(now, g, "QK", t)
                now = alu(alu(now, g, "max", t_max, t), g, "exp", t_exp, t)
                now = gemm_at(now, g, "PV", t)
                released[(t, g)] = now
                yield ("time", now)
            return
        now = max(now, (yield ("full", 0)))
        now = gemm_at(now, g, "QK", 0)
        now = alu(alu(now, g, "max", t_max, 0), g, "exp", t_exp, 0)
        for t in range(1, tiles):
            now = max(now, (yield ("full", t)))
            qk_end = gemm_at(now, g, "QK", t)
            pv_end = gemm_at(qk_end, g, "PV", t - 1)
            max_end = alu(qk_end, g, "max", t_max, t)
            if mode == "pipelined":
                now = alu(max(max_end, pv_end), g, "exp", t_exp, t)
            else:
                now = max(alu(max_end, g, "exp", t_exp, t), pv_end)
            released[(t - 1, g)] = now
            yield ("time", now)
        now = gemm_at(now, g, "PV", tiles - 1)
        released[(tiles - 1, g)] = now
        yield ("time", now)

    progs = [program(g) for g in range(CONSUMERS)]
    pending = [next(p) for p in progs]
    clock = [0] * CONSUMERS
    issue_copies()
    done = [False] * CONSUMERS
    while not all(done):
        # the warpgroup whose next step can start first; a wait for a copy not yet issued blocks
        ready = []
        for g in range(CONSUMERS):
            if done[g]:
                continue
            kind, arg = pending[g]
            if kind == "full":
                if arg in full:
                    ready.append((max(clock[g], full[arg]), g))
            else:
                ready.append((clock[g], g))
        if not ready:
            fc.fail("the model deadlocked (a ring of fewer than 2 stages?)")
        _, g = min(ready)
        kind, arg = pending[g]
        try:
            pending[g] = progs[g].send(full[arg] if kind == "full" else None)
            if pending[g][0] == "time":
                clock[g] = pending[g][1]
                pending[g] = next(progs[g])
        except StopIteration:
            done[g] = True
        issue_copies()
    end = max(e for _, _, e, _, _ in bars)
    return bars, end


def main():
    ap = argparse.ArgumentParser(description="Draw stage 8's producer/consumer pipeline (a model).")
    ap.add_argument("out", help="PNG file to write")
    ap.add_argument("--tiles", type=int, default=6, help="KV tiles of the pack (default 6)")
    ap.add_argument("--stages", type=int, default=3, help="ring stages (default 3, kHopperStages)")
    ap.add_argument("--tma", type=int, default=1000, help="cycles from a copy's issue to its stage full (default 1000)")
    ap.add_argument("--gemm", type=int, default=256, help="cycles of one warpgroup's GEMM on the tensor pipe (default 256)")
    ap.add_argument("--max", type=int, default=120, help="cycles of the row max (default 120)")
    ap.add_argument("--exp", type=int, default=280, help="cycles of the exponentials, sums and rescale (default 280)")
    a = ap.parse_args()
    if a.tiles < 2 or a.stages < 3:
        fc.fail("--tiles must be at least 2 and --stages at least 3 (a pipelined warpgroup holds two stages)")
    if min(a.tma, a.gemm, a.max, a.exp) <= 0:
        fc.fail("--tma, --gemm, --max and --exp must be positive cycle counts")
    plt = fc.pyplot()
    modes = [("serial", "serial consumer (stage 9)"),
             ("pipelined", "pipelined, as compiled (stage 8): exponentials after the P V"),
             ("ideal", "pipelined, exponentials under the P V (not reached)")]
    rows = ["producer", "tensor pipe", "warpgroup 1", "warpgroup 2"]
    fig, axes = plt.subplots(len(modes), 1, figsize=(12, 7.5), sharex=True)
    for ax, (mode, title) in zip(axes, modes):
        bars, end = simulate(mode, a.tiles, a.stages, a.tma, a.gemm, a.max, a.exp)
        per_tile = end / a.tiles
        print(f"{mode}: {end} cycles for {a.tiles} tiles, {per_tile:.0f} per tile")
        for row, start, stop, kind, label in bars:
            y = len(rows) - 1 - rows.index(row)
            h = 0.7
            if row == "producer":  # the copies in flight overlap: one lane per ring stage
                stage = int(label.rsplit(" ", 1)[1].rstrip(")"))
                h = 0.7 / a.stages
                y += 0.35 - h * (stage + 0.5)
            if stop - start < 1:
                continue
            ax.barh(y, stop - start, left=start, height=h, color=COLORS[kind],
                    edgecolor="0.4" if kind != "wait" else "0.8", linewidth=0.5,
                    hatch="///" if kind == "wait" else None)
            if label and stop - start > 120:
                ax.text((start + stop) / 2, y, label.split(" (")[0], ha="center", va="center", fontsize=6)
        ax.set_yticks(range(len(rows)))
        ax.set_yticklabels(list(reversed(rows)), fontsize=8)
        ax.set_title(f"{title}: {per_tile:.0f} cycles per tile", fontsize=9, loc="left")
    axes[-1].set_xlabel("cycles (model; hatched: the warpgroup waits for its GEMM)")
    handles = [plt.Rectangle((0, 0), 1, 1, color=COLORS[k]) for k in ("copy", "QK", "PV", "max", "exp")]
    fig.legend(handles, ["TMA copy of K and V", "S = Q K^T", "O += P V", "row max", "exponentials, sums"],
               loc="lower center", ncol=5, fontsize=8)
    fig.suptitle(f"Stage 8's 128-row CTA, a model: {a.stages}-stage ring, copy {a.tma}, GEMM {a.gemm}, "
                 f"max {a.max}, exp {a.exp} cycles", fontsize=10)
    fig.tight_layout(rect=(0, 0.05, 1, 0.96))
    fig.savefig(a.out, dpi=120)
    print(f"wrote {a.out} (3 panels)")


if __name__ == "__main__":
    main()
