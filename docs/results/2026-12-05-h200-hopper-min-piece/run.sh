#!/usr/bin/env bash
# --hopper-min-piece on the H200, one call, from a checkout with build-ab/patlab.xz built on the
# workstation (sm_90a) at a commit that has the option: per workload below (or WORKLOADS,
# '|'-separated) and per setting of VALUES ("W:P" = --hopper-wide-kv W --hopper-min-piece P;
# default "2048:0 1024:0 1024:384 1024:512 0:384"), stages 7 and 8, eager and graph, 20 timed
# runs, cold L2, every stage checked against the oracle first; no run starts with less than 20 s
# left. Writes OUT/RUN.tar.gz (RUN/, default r1: <workload>-<W>_<P>.jsonl and .err, env.txt);
# the table: `python3 ../2026-12-04-h200-hopper-min-kv/table.py RUN wide_piece`.
#   [RUN=r1] [WORKLOADS=...] [VALUES=...] docs/results/2026-12-05-h200-hopper-min-piece/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-r1}" "$final" patlab || exit 1
w="--tree 1,64_1024,128 --heads 32/8"
w+="|--tree 1,64_1536,128 --heads 32/8"
w+="|--tree 1,64_1536,128 --heads 64/8"
w+="|--tree 1,64_2048,128 --heads 32/8"
w+="|--tree 1,64_3072,128 --heads 32/8"
w+="|--tree 1,128_8192,256 --heads 32/8"
w+="|--tree 1,32_32768,256 --heads 64/8"
w+="|--tree 1,1024_2048,32 --heads 64/8"
IFS='|' read -r -a workloads <<< "${WORKLOADS:-$w}"
read -r -a values <<< "${VALUES:-2048:0 1024:0 1024:384 1024:512 0:384}"
for wl in "${workloads[@]}"; do
  name=$(slug "$wl")
  for v in "${values[@]}"; do
    if (( $(left) < 20 )); then echo "stopped for time before $name $v"; exit 0; fi
    file=$out/$name-${v/:/_}
    # shellcheck disable=SC2086
    timeout "$(cap 60)" /tmp/ab/patlab bench $wl --stage pat hopper --hopper-wide-kv "${v%%:*}" \
      --hopper-min-piece "${v#*:}" --repeats 20 --format jsonl > "$file.jsonl" 2> "$file.err"
    echo "exit $? at $SECONDS s: $name $v"
  done
done
exit 0
