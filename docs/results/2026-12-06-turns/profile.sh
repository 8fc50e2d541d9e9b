#!/usr/bin/env bash
# Run 2 of this folder, one call: on an H200 first, issue 12's 67 lines at main's defaults with
# main's patlab (A; suite_bench, `bench W --stage pat hopper --repeats 20 --no-check`, into
# suite/N.jsonl) while LINES_STOP seconds are left; then Nsight Compute (`--set full`, clocks
# not locked) on one CTA-tall kernel of stage 8 with A and with the branch's patlab-b (B, turns):
# the 192-row instance on `1,1024_2048,32` 32/8 and the 128-row one on `1,64_32768,512` 32/8, the
# second launch of each, into ncu-SIDE-ROWS.txt (details page) and ncu-SIDE-ROWS-raw.csv (every
# metric, the warps' stall reasons among them).
#   [RUN=t2] [LINES_STOP=200] docs/results/2026-12-06-turns/profile.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-t2}" "$final" patlab patlab-b || exit 1
export PATH=/usr/local/cuda/bin:$PATH
ncu --version | tail -1 >> "$out/env.txt"
if on_h200; then
  budget_all=$budget
  budget=$(( budget - ${LINES_STOP:-200} + 15 ))
  suite_bench patlab "$(issue12_lines)" 1 --stage pat hopper
  budget=$budget_all
fi
profile() {  # SIDE BIN ROWS CONSUMERS WORKLOAD...
  local side=$1 bin=$2 rows=$3 consumers=$4
  shift 4
  if (( $(left) < 40 )); then echo "ncu: stopped for time before $side $rows"; return 0; fi
  timeout "$(cap 90)" ncu --clock-control none --set full --kernel-name-base demangled \
    -k "regex:hopper_pack_kernel<__half, .int.128, .int.$consumers, .int.64, .bool.0>" --launch-skip 1 --launch-count 1 -f \
    -o "/tmp/ncu-$side-$rows" "$bin" bench "$@" --stage hopper --no-check --repeats 20 --warmup 1 --no-graph \
    > "$out/ncu-$side-$rows.log" 2>&1
  echo "ncu $side $rows exit $? at $SECONDS s"
  ncu --import "/tmp/ncu-$side-$rows.ncu-rep" --page details > "$out/ncu-$side-$rows.txt" 2>> "$out/ncu-$side-$rows.log"
  ncu --import "/tmp/ncu-$side-$rows.ncu-rep" --page raw --csv > "$out/ncu-$side-$rows-raw.csv" 2>> "$out/ncu-$side-$rows.log"
}
for side in a b; do
  bin=/tmp/ab/patlab; [[ $side == b ]] && bin=/tmp/ab/patlab-b
  profile $side $bin 192 3 --tree 1,1024_2048,32 --heads 32/8
  profile $side $bin 128 2 --tree 1,64_32768,512 --heads 32/8
done
exit 0
