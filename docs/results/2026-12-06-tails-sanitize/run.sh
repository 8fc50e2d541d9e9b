#!/usr/bin/env bash
# compute-sanitizer on the leaf tails instances (`--take-leaves`, merged in 68ed8c3): per tool of
# TOOLS (default memcheck racecheck synccheck), tools/sanitize.sh on stage 7 (pat) over PAT_W and
# on stage 8 (hopper) over HOPPER_W ('|'-separated workloads, defaults below: every tails tile
# kind, 16x32t with tails ending inside a page, 64x64t, and stage 8's 64-, 128- and 192-row
# wgmma tails tiles), each run checked against the oracle under the tool. One call,
# build-ab/patlab.xz (tools/patlab of main built on the workstation). Writes OUT/RUN.tar.gz
# (RUN/, default r1). No step starts after SECONDS (default 540).
#   [RUN=r1] [TOOLS="memcheck ..."] docs/results/2026-12-06-tails-sanitize/run.sh OUT [SECONDS]
# shellcheck source=../../../tools/results_steps.sh
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-r1}" "$final" patlab || exit 1
sanitize_prep
tails="--take-leaves --tail-min-cut 0"
pat_w="--tree 1,8_64,32 --heads 16/2 $tails|--tree 1,4,8_48,32,20 --heads 8/8 --dtype bf16 $tails"
hop_w="--tree 1,8_64,32 --heads 16/2 $tails --hopper-min-kv 0"
hop_w+="|--tree 1,24_304,32 --heads 32/4 $tails --tail-rows 192 --hopper-min-kv 0 --hopper-wide-kv 0"
hop_w+="|--tree 1,16_512,32 --heads 64/8 $tails --tail-rows 128 --hopper-min-kv 0 --hopper-wide-kv 0 --hopper-rows 128"
n=0
for tool in ${TOOLS:-memcheck racecheck synccheck}; do
  for stage in pat hopper; do
    n=$((n + 1))
    w=$pat_w; [[ $stage == hopper ]] && w=$hop_w
    if (( $(left) < 40 )); then echo "stopped for time before step $n ($tool $stage)"; break 2; fi
    SANITIZE_TOOLS=$tool SANITIZE_STAGES=$stage SANITIZE_WORKLOADS="${w}" timeout "$(cap 240)" \
      tools/sanitize.sh /tmp/sb > "$out/sanitize-$n.log" 2>&1
    echo "step $n ($tool $stage) exit $? at $SECONDS s: $(tail -1 "$out/sanitize-$n.log")"
  done
done
exit 0
