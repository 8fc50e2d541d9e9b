#!/usr/bin/env python3
"""The figure scripts (tools/figures/) on the CPU: each draws from the committed results or from
patlab's own output, prefix_sweep.py from a small synthetic sweep (its real input comes from the
GPU machine; nothing drawn here is committed), every one says in one line (exit 2) when its input
is wrong or matplotlib is missing, and the sweep's workload list is one prefix-length series that
patlab accepts.

    python3 tests/docs/test_figures.py PATLAB     # PATLAB: the built patlab executable
"""
import json
import math
import os
import pathlib
import subprocess
import sys
import tempfile

ROOT = pathlib.Path(__file__).resolve().parent.parent.parent
FIG = ROOT / "tools/figures"
SUITE = ROOT / "docs/results/2026-11-22-h100-suite"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MIN_PNG_BYTES = 10_000
failures = []


def check(ok: bool, what: str) -> None:
    print(("ok  " if ok else "FAIL: ") + what)
    if not ok:
        failures.append(what)


def run(argv, env=None):
    return subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=300, env=env)


def draws(script: str, args, out: pathlib.Path, says: str) -> None:
    r = run([sys.executable, str(FIG / script)] + [str(a) for a in args] + [str(out)])
    data = out.read_bytes() if out.is_file() else b""
    check(r.returncode == 0 and says in r.stdout and data.startswith(PNG_MAGIC) and len(data) >= MIN_PNG_BYTES,
          f"{script} draws {out.name} and says '{says}' (exit {r.returncode}, {len(data)} bytes, "
          f"{(r.stdout + r.stderr).strip()[:200]!r})")


def refuses(script: str, args, says: str, env=None) -> None:
    r = run([sys.executable, str(FIG / script)] + [str(a) for a in args], env=env)
    lines = r.stderr.strip().splitlines()
    check(r.returncode == 2 and len(lines) == 1 and says in lines[0] and not r.stdout,
          f"{script} {' '.join(map(str, args))[:60]}: exit 2, one line with '{says}' "
          f"(exit {r.returncode}, {r.stderr.strip()[:200]!r})")


def synthetic_cta_trace(folder: pathlib.Path) -> pathlib.Path:
    """A CTA trace shaped like patlab bench --cta-trace's: stages 6 and 7, two pack kernels each."""
    path = folder / "trace.csv"
    with open(path, "w") as f:
        f.write("run,stage,kernel,block,sm,start_us,end_us\n")
        for stage, big, length in (("multistream", 64, 30.0), ("pat", 128, 18.0)):
            for b in range(big):
                f.write(f"0,{stage},pack 64x64,{b},{b % 132},{0.01 * b:.3f},{0.01 * b + length:.3f}\n")
            for b in range(512):
                start = 0.05 * b
                f.write(f"0,{stage},pack 16x64,{b},{(7 * b) % 132},{start:.3f},{start + 11:.3f}\n")
    return path


def synthetic_sweep(folder: pathlib.Path) -> None:
    """patlab.jsonl and peers.jsonl of a 3-point sweep, shaped like tools/peers/suite.py's output."""
    with open(folder / "patlab.jsonl", "w") as f, open(folder / "peers.jsonl", "w") as g:
        for i, p in enumerate((1024, 2048, 4096)):
            key = f"--tree 1,64_{p},256 --heads 32/8"
            results = [{"stage": s, "time_us": t * (i + 1), "model_bytes": 1e6 * (i + 1)}
                       for s, t in (("splitkv", 300.0), ("pat", 100.0))]
            f.write(json.dumps({"key": key, "compare": {"run": {"device": "synthetic", "commit": "test"},
                                                       "results": results}}) + "\n")
            for peer, t in (("fi-decode", 200.0), ("fi-cascade", 150.0)):
                g.write(json.dumps({"key": key, "peer": peer, "status": "PASS", "time_us": t * (i + 1)}) + "\n")
            g.write(json.dumps({"key": key, "peer": "sdpa-flash", "status": "FAIL", "time_us": None}) + "\n")


def main(argv) -> int:
    if len(argv) != 2:
        print("usage: test_figures.py PATLAB", file=sys.stderr)
        return 2
    patlab = str(pathlib.Path(argv[1]).resolve())  # meson passes it relative to the build folder
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        # a. the plan of a small workload, from patlab's own JSON
        plans = []
        for name, extra in (("walk", ["--no-split"]), ("split", ["--no-fill"])):
            r = run([patlab, "plan", "--tree", "1,3,9_1024,256,64", "--heads", "64/8", "--packs", "--format", "json",
                     "--quiet"] + extra)
            (tmp / f"{name}.json").write_text(r.stdout)
            plans.append(tmp / f"{name}.json")
            check(r.returncode == 0, f"patlab plan {' '.join(extra)} --format json (exit {r.returncode})")
        draws("plan_tree.py", plans, tmp / "plan_tree.png", "(2 plans, 42 packs)")
        refuses("plan_tree.py", [SUITE / "suite.json", tmp / "x.png"], "has no 'plan' and 'packs'")
        # a2. stage 9's pulled work list, with and without multicast
        pulls = []
        for cap in ("4", "1"):
            r = run([patlab, "plan", "--tree", "1,256_1024,32", "--heads", "32/8", "--hopper-tiles", "--cluster",
                     "--pulls", "--max-cluster", cap, "--format", "json", "--quiet"])
            (tmp / f"pulls{cap}.json").write_text(r.stdout)
            pulls.append(tmp / f"pulls{cap}.json")
            check(r.returncode == 0, f"patlab plan --cluster --pulls --max-cluster {cap} --format json (exit {r.returncode})")
        draws("cluster_pulls.py", pulls, tmp / "pulls.png", "(2 panels)")
        # stage 8's pipeline model: three panels; the serial consumer never beats the ideal one
        r = run([sys.executable, str(FIG / "hopper_pipeline.py"), tmp / "pipe.png"])
        per_tile = dict(line.split(":")[0:1] + [float(line.split(", ")[1].split()[0])]
                        for line in r.stdout.splitlines() if "per tile" in line)
        check(r.returncode == 0 and "(3 panels)" in r.stdout and set(per_tile) == {"serial", "pipelined", "ideal"}
              and per_tile["ideal"] <= per_tile["serial"] and per_tile["ideal"] <= per_tile["pipelined"]
              and (tmp / "pipe.png").read_bytes().startswith(PNG_MAGIC),
              f"hopper_pipeline.py draws three consumers, the ideal one no slower ({per_tile}, {r.stderr[:200]!r})")
        refuses("hopper_pipeline.py", [tmp / "x.png", "--stages", "2"], "at least 3")
        refuses("hopper_pipeline.py", [tmp / "x.png", "--gemm", "0"], "must be positive")
        refuses("cluster_pulls.py", [plans[0], tmp / "x.png"], "has no 'pulls' table")
        # a3. the CTA timeline (patlab bench --cta-trace needs a GPU and a trace build: a synthetic trace)
        trace = synthetic_cta_trace(tmp)
        draws("cta_timeline.py", [trace], tmp / "timeline.png", "(2 stages, 1216 CTAs)")
        refuses("cta_timeline.py", [SUITE / "suite.json", tmp / "x.png"], "is not a CTA trace")
        refuses("cta_timeline.py", [trace, tmp / "x.png", "--stage", "naive"], "no CTAs of stage 'naive'")
        # b. the suite by head configuration
        draws("stages_by_heads.py", [SUITE / "suite.json"], tmp / "stages.png", "(speedup, 4 panels, 85 workloads)")
        refuses("stages_by_heads.py", [tmp / "none.json", tmp / "x.png"], "cannot read")
        # c. predicted against measured: the suite's records, and the jsonl form of one compare
        draws("predicted_vs_measured.py", [SUITE / "patlab.jsonl", "--bandwidth", "run"], tmp / "pvm.png",
              "(595 points, 85 runs)")
        rows = [{"table": "run", "device": "synthetic", "copy GB/s": 3000.0}] + \
               [{"table": "results", "stage": s, "model_bytes": 3e8 * k, "time_us": 150.0 * k}
                for k in (1, 2) for s in ("splitkv", "pat")]
        (tmp / "compare.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        draws("predicted_vs_measured.py", [tmp / "compare.jsonl", "--bandwidth", "3000"], tmp / "pvm2.png",
              "(4 points, 1 runs)")
        refuses("predicted_vs_measured.py", [SUITE / "patlab.jsonl", tmp / "x.png", "--bandwidth", "fast"],
                "neither a positive GB/s nor 'run'")
        refuses("predicted_vs_measured.py", [SUITE / "suite.json", tmp / "x.png", "--bandwidth", "run"],
                "no results rows")
        # d. the prefix sweep: synthetic input only, never committed
        sweep = tmp / "sweep"
        sweep.mkdir()
        synthetic_sweep(sweep)
        draws("prefix_sweep.py", [sweep], tmp / "sweep.png", "(4 series)")
        refuses("prefix_sweep.py", [SUITE, tmp / "x.png"], "is not a two-level tree")
        refuses("prefix_sweep.py", [tmp, tmp / "x.png"], "no patlab.jsonl")
        # the sweep list: one series in P that patlab accepts
        sys.path.insert(0, str(FIG))
        import prefix_sweep
        lines = [l for l in (FIG / "prefix_sweep.txt").read_text().splitlines() if l.strip() and not l.startswith("#")]
        keys = {prefix_sweep.prefix_of(l)[1] for l in lines}
        lengths = [prefix_sweep.prefix_of(l)[0] for l in lines]
        check(len(keys) == 1 and lengths == sorted(set(lengths)) and len(lengths) >= 5,
              f"prefix_sweep.txt: {len(lengths)} prompt lengths {lengths}, one fixed rest {keys}")
        for line in lines:
            r = run([patlab, "workload", "--quiet"] + line.split())
            check(r.returncode == 0, f"patlab workload {line} (exit {r.returncode} {r.stderr.strip()[:120]})")
        # e. sparse decode's error-vs-bytes curves, from patlab sparse --curves --format csv
        csvs = []
        for data in ("peaked", "flat"):
            r = run([patlab, "sparse", "--tree", "1,4_300,100", "--heads", "8/2", "--head-dim", "64", "--window", "128",
                     "--method", "psa", "--max-budget", "7", "--data", data, "--curves", "--curve-n", "3,5,7",
                     "--curve-tau", "0.5,0.9", "--format", "csv", "--quiet"])
            (tmp / f"{data}.csv").write_text(r.stdout)
            csvs.append(tmp / f"{data}.csv")
            check(r.returncode == 0, f"patlab sparse --data {data} --curves --format csv (exit {r.returncode})")
        draws("sparse_curves.py", csvs, tmp / "sparse.png", "(2 panels, 10 points)")
        # the equal-error rule: top-n's blocks at a PSA point's max error, on hand-made curves
        import sparse_curves
        at = sparse_curves.topn_blocks_at
        topn = [(256, 2.0), (192, 4.0), (384, 1.0), (512, 0.5)]
        check(at(1.0, topn) == (384, 256, 384), f"topn_blocks_at: an error on the curve is its point ({at(1.0, topn)})")
        got = at(2 ** 0.5, topn)
        check(abs(got[0] - 320) < 1e-9 and got[1:] == (256, 384),
              f"topn_blocks_at: halfway in log(error) is halfway in blocks ({got})")
        check(at(5.0, topn) == (192, 192, 192), f"topn_blocks_at: above the curve, its first point ({at(5.0, topn)})")
        check(at(0.1, topn) is None, "topn_blocks_at: below the curve, not reached")
        got = at(1.5, [(100, 3.0), (200, 1.0), (300, 2.0), (400, 0.5)])
        check(got[1:] == (100, 200) and abs(got[0] - (100 + 100 * math.log(2) / math.log(3))) < 1e-9,
              f"topn_blocks_at: the first crossing of a curve that is not monotone ({got})")
        got = at(1e-20, [(100, 1.0), (200, 0.0)])
        check(got is not None and 100 < got[0] <= 200, f"topn_blocks_at: an error of 0 is floored ({got})")
        r = run([sys.executable, str(FIG / "sparse_curves.py"), csvs[0], tmp / "eq.png"])
        check(r.returncode == 0 and "PSA against top-n at equal max error" in r.stdout and "top-n / PSA" in r.stdout,
              f"sparse_curves.py prints the equal-error table ({r.stdout[:200]!r})")
        refuses("sparse_curves.py", [SUITE / "suite.json", tmp / "x.png"], "has no 'curves' table")
        refuses("sparse_curves.py", [tmp / "x.png"], "give at least one CSV file")
        # matplotlib missing: one line, exit 2, before anything is drawn
        fake = tmp / "fake"
        (fake / "matplotlib").mkdir(parents=True)
        (fake / "matplotlib" / "__init__.py").write_text("raise ImportError('hidden by test_figures.py')\n")
        env = dict(os.environ, PYTHONPATH=str(fake))
        refuses("stages_by_heads.py", [SUITE / "suite.json", tmp / "x.png"], "matplotlib is missing", env)
        refuses("predicted_vs_measured.py", [SUITE / "patlab.jsonl", tmp / "x.png", "--bandwidth", "run"],
                "matplotlib is missing", env)
        refuses("plan_tree.py", plans + [tmp / "x.png"], "matplotlib is missing", env)
        refuses("cluster_pulls.py", pulls + [tmp / "x.png"], "matplotlib is missing", env)
        refuses("cta_timeline.py", [trace, tmp / "x.png"], "matplotlib is missing", env)
        refuses("hopper_pipeline.py", [tmp / "x.png"], "matplotlib is missing", env)
        refuses("prefix_sweep.py", [sweep, tmp / "x.png"], "matplotlib is missing", env)
        refuses("sparse_curves.py", csvs + [tmp / "x.png"], "matplotlib is missing", env)
    print(f"{len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
