#!/usr/bin/env python3
"""tools/bench_rows.py, the results folders' reader of `patlab bench --format jsonl` files: patlab's
own output (on this machine: the run row and predictions, no timed rows without a GPU), synthetic
suite folders (timed rows kept, untimed dropped, a later folder's line replacing an earlier one's,
files without a run row or a needed stage left out), the workload's table name and issue 12's
selection of a line.

Usage: test_bench_rows.py PATLAB
"""
import json
import pathlib
import subprocess
import sys
import tempfile

from cli_checks import check, failures

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "tools"))
import bench_rows  # noqa: E402  (the module under test)


def run_row(workload):
    return {"table": "run", "workload": workload, "shape": "32/8 heads, d=128, page 16, fp16"}


def result_row(stage, us):
    return {"table": "results", "stage": stage, "time_us": us, "graph_us": us}


def write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        p = subprocess.run([sys.argv[1], "bench", "--tree", "1,4_64,16", "--heads", "8/2", "--stage", "pat",
                            "--format", "jsonl"], capture_output=True, text=True, timeout=120)
        real = tmp / "real.jsonl"
        real.write_text(p.stdout)
        run, stages = bench_rows.read_bench(real)
        # exit 77: no GPU here, bench reports its CPU parts (the run row, the predictions)
        check("patlab bench's own file: its run row", p.returncode in (0, 77) and run is not None
              and run.get("workload") == "tree 1,4_64,16", f"exit {p.returncode}: {p.stdout[:200]!r}")
        check("its table name", run is not None and bench_rows.workload_name(run) == "tree 1,4_64,16, 8/2 heads",
              str(run and bench_rows.workload_name(run)))
        rows = [json.loads(line) for line in p.stdout.splitlines() if line.strip()]
        timed = {r["stage"] for r in rows if r.get("table") == "results" and r.get("time_us") is not None}
        check("the timed results rows are the stages (none without a GPU)",
              set(stages) == timed and (p.returncode == 0 or not timed), f"{sorted(stages)} against {sorted(timed)}")

        write(tmp / "r1/suite/1.jsonl", [run_row("a"), result_row("pat", 10.0), result_row("hopper", 8.0)])
        write(tmp / "r1/suite/2.jsonl", [run_row("b"), result_row("pat", 20.0), result_row("hopper", 16.0)])
        write(tmp / "r1/suite/3.jsonl", [run_row("c"), result_row("pat", 30.0), result_row("hopper", None)])
        write(tmp / "r1/suite/4.jsonl", [result_row("pat", 40.0)])
        write(tmp / "r2/suite/2.jsonl", [run_row("b"), result_row("pat", 21.0), result_row("hopper", 17.0)])
        lines = bench_rows.read_suite([tmp / "r1", tmp / "r2"])
        check("lines with a run row, in order", list(lines) == [1, 2, 3], str(list(lines)))
        check("the later folder's line replaces the earlier one's",
              lines.get(2, (None, {}))[1].get("pat", {}).get("time_us") == 21.0, str(lines.get(2)))
        check("an untimed stage is left out", set(lines.get(3, (None, {}))[1]) == {"pat"}, str(lines.get(3)))
        needed = bench_rows.read_suite([tmp / "r1"], ("pat", "hopper"))
        check("need: lines without every needed stage are left out", list(needed) == [1, 2], str(list(needed)))
        check("one folder alone keeps its own line",
              needed.get(2, (None, {}))[1].get("hopper", {}).get("time_us") == 16.0, str(needed.get(2)))
        check("a folder without suite/ reads as empty", bench_rows.read_suite([tmp / "none"]) == {})

        # An A/B run: sides a and b, two rounds each; a later folder's workload replaces the earlier one's.
        def checked(stage, us, verdict):
            return dict(result_row(stage, us), check=verdict)
        write(tmp / "ab1/ab-1-a-1.jsonl", [run_row("a"), checked("pat", 10.0, "not checked")])
        write(tmp / "ab1/ab-1-b-1.jsonl", [run_row("a"), checked("pat", 8.0, "PASS max|err| 1e-4")])
        write(tmp / "ab1/ab-1-a-2.jsonl", [run_row("a"), checked("pat", 12.0, "not checked")])
        write(tmp / "ab1/ab-1-b-2.jsonl", [run_row("a"), checked("pat", 9.0, "not checked")])
        write(tmp / "ab1/ab-2-a-1.jsonl", [run_row("b"), checked("pat", 5.0, "not checked")])
        write(tmp / "ab2/ab-2-a-1.jsonl", [run_row("b2"), checked("pat", 6.0, "not checked")])
        ab = bench_rows.read_ab([tmp / "ab1", tmp / "ab2"])
        check("A/B: each side's median over its rounds", ab.median(1, "pat", "a") == 11.0 and
              ab.median(1, "pat", "b") == 8.5, str(ab.rows.get((1, "pat"))))
        check("A/B: B over A", abs(ab.ratio(1, "pat") - 8.5 / 11.0) < 1e-12, str(ab.ratio(1, "pat")))
        check("A/B: B's checked verdict", ab.check(1, "pat") == "PASS", ab.check(1, "pat"))
        check("A/B: no ratio or verdict without side b", ab.ratio(2, "pat") is None and ab.check(2, "pat") == "-")
        check("A/B: the later folder's workload replaces the earlier one's",
              ab.runs[2]["workload"] == "b2" and ab.median(2, "pat", "a") == 6.0, str(ab.runs.get(2)))

        def sized(unique, summed):
            return {"unique bytes (KV + q + out)": unique, "per-request KV bytes": summed}
        check("issue 12's lines: shared KV and at least 128 MB unique",
              bench_rows.issue12_line(sized(128e6, 200e6)) and not bench_rows.issue12_line(sized(127e6, 200e6))
              and not bench_rows.issue12_line(sized(200e6, 202e6)) and bench_rows.issue12_line(sized(200e6, 203e6)))
    print("all passed" if not failures else f"{len(failures)} failed")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
