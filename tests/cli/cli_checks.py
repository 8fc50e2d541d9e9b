"""What the CLI contract tests share: one line per check (failures collected, the process exit
status from them) and the bad-input rule: exit 2 and exactly one `patlab: error:` line naming the
problem."""

failures = []


def check(name, ok, detail=""):
    print(f"{'ok' if ok else 'FAIL':4} {name}" + ("" if ok else f"\n       {detail}"))
    if not ok:
        failures.append(name)


def expect_error(name, p, needle, no_stdout=False):
    """`p` (a finished patlab run) exited 2 with one error line containing `needle` and nothing
    else on stderr (and, with no_stdout, nothing on stdout)."""
    errors = [l for l in p.stderr.splitlines() if l.startswith("patlab: error: ")]
    check(name, p.returncode == 2 and len(errors) == 1 and needle in errors[0] and p.stderr.strip() == errors[0]
          and (not no_stdout or not p.stdout), f"exit {p.returncode}, stderr {p.stderr!r}, wanted {needle!r}")
