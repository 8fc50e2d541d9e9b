#!/usr/bin/env python3
"""A seeded sweep of random and hostile command lines over every subcommand: each must end within
a time limit with exit 0, 2 (exactly one `patlab: error:` line, the last on stderr) or 77 (no GPU),
never a hang, a crash, an unexpected-failure exit (4) or a failed check (1: the CPU parts check
themselves). The options of each subcommand are read from its --help, so new options are swept
too; the values mix sane ones with empty strings, negative and huge numbers, special files and
malformed specs. Two hangs and one silent failure were found this way (an empty argument past the
workload, /dev/zero as a trace, /dev/full as an output file).

Usage: test_cli_sweep.py PATH/TO/patlab [CASES] [SEED]   (default 150 cases, seed 1; the seed of
every failing case is printed with its command line, to rerun it alone)
"""
import os
import random
import re
import shlex
import subprocess
import sys
import tempfile

from cli_checks import check, failures

PATLAB = os.path.abspath(sys.argv[1]) if len(sys.argv) > 1 else "patlab"
CASES = int(sys.argv[2]) if len(sys.argv) > 2 else 150
SEED = int(sys.argv[3]) if len(sys.argv) > 3 else 1
CASE_SECONDS = 60
EXIT_OK, EXIT_BAD_INPUT, EXIT_NOTHING_RAN = 0, 2, 77
COMMANDS = ["list", "workload", "check", "plan", "bench", "compare", "export", "memsim", "layerkv", "serve",
            "packinfer", "sparse"]
WORKLOADS = ["tiny", "sysprompt", "1,10_4096,416", "2_17", "1,3_100,15", "", "x", "1,2", "0_5", "/dev/zero",
             "gen:requests=5,rate=2", "gen:rate=0", "gen:", "/nonexistent.json"]
VALUES = ["", "0", "-1", "1", "2", "3", "7", "16", "64", "128", "256", "1e9", "99999999999", "0.5", "1.5", "-0.5",
          "nan", "inf", "x", "tiny", "1,10_4096,416", "2_17", "32/8", "28/4", "8/3", "fp8", "bf16", "json", "csv",
          "nsa", "fsa", "psa", "clustered", "streaming", "requests", "hopper", "pat", "9", "\t", "1 2", "0,0",
          "3,4,6", "a,b", "/dev/zero", "/dev/full", "/nonexistent/x", "out.json", "outdir", "gen:requests=5"]
# An option name and what --help shows one space after it: a type in capitals (TEXT, INT, FLOAT,
# UINT, a metavariable) for an option that takes a value; for a flag, nothing (its description
# starts after several spaces) or "Excludes:" / "Needs:".
OPTION = re.compile(r"^\s+(--[a-z0-9-]+)(?:,\S+)?(?: ([A-Za-z_]+))?", re.M)


def options_of(command):
    """(name, takes_value) of each option --help lists for `command`, --help itself left out."""
    text = subprocess.run([PATLAB, command, "--help"], capture_output=True, text=True, timeout=30).stdout
    found = {}
    for m in OPTION.finditer(text):
        name, kind = m.group(1), m.group(2)
        if name != "--help":
            found[name] = bool(kind) and kind.isupper()
    return sorted(found.items())


def draw(rng, command, options):
    args = [command]
    if rng.random() < 0.5:
        args.append(rng.choice(WORKLOADS))
    for _ in range(rng.randint(0, 4)):
        name, takes_value = rng.choice(options)
        args.append(name)
        if takes_value:
            args.append(rng.choice(VALUES))
    if rng.random() < 0.1:
        args.append(rng.choice(["", "--", "-", "--x", "x"]))
    if any(name == "--quiet" for name, _ in options) and "--quiet" not in args:
        args.append("--quiet")
    return args


def verdict(p):
    """What is wrong with a finished run, or None."""
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    errors = [l for l in lines if l.startswith("patlab: error: ")]
    if p.returncode not in (EXIT_OK, EXIT_BAD_INPUT, EXIT_NOTHING_RAN):
        return f"exit {p.returncode}"
    if p.returncode == EXIT_BAD_INPUT and (len(errors) != 1 or lines[-1] != errors[0]):
        return f"exit 2 without exactly one error line, last: {lines[-3:]!r}"
    return None


def main():
    rng = random.Random(SEED)
    options = {c: options_of(c) for c in COMMANDS}
    check("every subcommand's --help lists options", all(options.values()),
          f"none found for {[c for c, o in options.items() if not o]}")
    problems = 0
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(CASES):
            command = rng.choice(COMMANDS)
            args = draw(rng, command, options[command])
            try:
                p = subprocess.run([PATLAB] + args, capture_output=True, text=True, timeout=CASE_SECONDS, cwd=tmp)
                wrong = verdict(p)
            except subprocess.TimeoutExpired:
                wrong = f"no answer within {CASE_SECONDS} s"
            if wrong:
                problems += 1
                check(f"case {i} (seed {SEED}): patlab {shlex.join(args)}", False, wrong)
    check(f"{CASES} random command lines (seed {SEED}) end with exit 0, 2 (one error line) or 77", problems == 0,
          f"{problems} did not")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
