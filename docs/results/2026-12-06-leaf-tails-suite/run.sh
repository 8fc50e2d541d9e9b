#!/usr/bin/env bash
# Issue 12's shared-prefix lines with leaf tails: per line N of tools/suite.txt then
# tools/suite-categories.txt named in LINES (default: the 67 lines of >= 128 MB unique bytes whose
# requests share KV, issue12.py's selection), `patlab-tails bench W --take-leaves --stage pat
# hopper --repeats 20 --no-check --format jsonl` (cold L2, eager and graph) into RUN/suite/N.jsonl
# while time is left, from the N-th line on (FIRST). Binary from build-ab/bundle.tar.xz
# (build-ab/COMMIT). Writes OUT/RUN.tar.gz (RUN/, default r1). The summary:
# ../2026-12-04-h200-tall-tiles/issue12.py RUN [--lines].
#   [RUN=r1] [FIRST=N] [LINES="1 5 ..."] [OPTS=--take-leaves] docs/results/2026-12-06-leaf-tails-suite/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-r1}" "$final" patlab-tails || exit 1
mkdir -p "$out/suite"
all="1 5 9 10 11 12 13 17 21 22 23 24 25 26 27 28 29 30 31 32 33 37 41 42 43 44 45 46 47 48 49 50 51"
all+=" 52 53 54 55 56 57 58 59 60 61 65 66 67 68 69 81 82 83 91 93 95 97 98 99 100 101 103 106 107"
all+=" 108 112 113 114 115"
lines=" ${LINES:-$all} "
while read -r n wl; do
  (( n < ${FIRST:-1} )) && continue
  [[ $lines == *" $n "* ]] || continue
  if (( $(left) < 15 )); then echo "suite: stopped for time before line $n ($wl)"; break; fi
  # shellcheck disable=SC2086  # a workload and the options are several words, on purpose
  timeout "$(cap 60)" /tmp/ab/patlab-tails bench $wl ${OPTS---take-leaves} --stage pat hopper --repeats 20 \
    --no-check --format jsonl > "$out/suite/$n.jsonl" 2> "$out/suite/$n.err"
  echo "suite $n exit $? at $SECONDS s: $wl"
done < <(suite_workloads)
exit 0
