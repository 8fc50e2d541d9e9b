#!/usr/bin/env bash
# Run 1 of this folder, one call on any H100 or H200, main's patlab (build-ab/patlab-c.xz):
#  1. stage 9's cluster sizes: per workload of the list below, `bench W --stage hopper cluster
#     --repeats 20` at --max-cluster 4 (the default), 2 and 1, in the order 4, 2, 1, one round over
#     the workloads while 90 seconds are left (then step 2) and a second after step 2 while
#     PEERS_AFTER seconds (default 20) are left, the first run at size 1 checked against the
#     oracle, into RUN/c-N-SIZE-K.jsonl (K the round);
#  2. the item timeline of stage 9 (build-ab/patlab-t.xz: main with its stage-9 item records, built
#     with -Dcta_trace=true): `bench W --stage hopper cluster --cta-trace RUN/trace-N.csv`
#     (3 traced runs after 20 timed ones; run c1 asked for 5, below the bench's minimum of 20, and its
#     traces stopped with a usage error: run c2 traced them alone) on six of the batches; stage9_items.py summarises them
#     (skipped where build-ab has no patlab-t.xz);
#  3. where more than 150 seconds are then left (PEERS_AFTER=300 keeps them), FastTree and DeFT
#     beside `patlab compare` (tools/peers/suite.py, cold L2, 30 repeats, graph replay too) on the
#     suite lines where FastTree led on 2026-12-02 (chapter 20, part 2), into RUN/peers/ (needs
#     .peers and .wheels carried).
# Writes OUT/RUN.tar.gz (RUN/; default c1).
#   [RUN=c1] docs/results/2026-12-07-cluster-sizes/run.sh OUT [SECONDS]
source "$(dirname "$0")/../../../tools/results_steps.sh"
results_args "$0" "$@"
results_begin "${RUN:-c1}" "$final" patlab-c || exit 1
workloads=("--tree 1,128_16384,256 --model qwen2.5-7b" "--tree 1,1024_2048,32 --heads 64/8"
  "--tree 4,256_8192,512 --heads 32/8" "--tree 1,64_32768,512 --heads 32/8" "--tree 1,256_8192,64 --model llama3-70b"
  "--tree 1,512_4096,128 --heads 32/8" "--tree 1,128_16384,256 --model qwen2.5-32b" "--tree 1,16_16384,128 --heads 64/8"
  "--tree 1,1024_2048,32 --heads 32/8" "--tree 1,32_32768,512 --heads 32/8" "--tree 1,16_1024,64 --heads 32/8"
  "--hetero 1 --model qwen2.5-7b" "--random-tree 7 --random-requests 48 --random-depth 6 --heads 32/8")
cluster_round() {  # round K of step 1 while more than STOP seconds are left
  local k=$1 stop=$2 n=0 wl c check
  for wl in "${workloads[@]}"; do
    n=$((n + 1))
    for c in 4 2 1; do
      if (( $(left) < stop )); then echo "clusters: stopped for time before $n c$c k$k"; return 0; fi
      check=--no-check; [[ $k$c == 11 ]] && check=
      # shellcheck disable=SC2086  # a workload is several options, on purpose
      timeout "$(cap 60)" /tmp/ab/patlab-c bench $wl --max-cluster "$c" --stage hopper cluster --repeats 20 $check \
        --format jsonl > "$out/c-$n-$c-$k.jsonl" 2> "$out/c-$n-$c-$k.err"
      echo "clusters $n c$c k$k exit $? at $SECONDS s: $wl"
    done
  done
}
cluster_round 1 90
traces=("--tree 1,128_16384,256 --model qwen2.5-7b --max-cluster 1" "--tree 1,128_16384,256 --model qwen2.5-7b"
  "--tree 1,16_16384,128 --heads 64/8" "--tree 1,32_32768,512 --heads 32/8" "--tree 1,16_1024,64 --heads 32/8"
  "--tree 1,1024_2048,32 --heads 64/8")
if [[ -f build-ab/patlab-t.xz ]] && unpack patlab-t; then
  echo "patlab-t: $(/tmp/ab/patlab-t --version)" >> "$out/env.txt"
  bench_each "$(IFS='|'; echo "${traces[*]}")" trace 30 60 /tmp/ab/patlab-t bench --stage hopper cluster --repeats 20 \
    --no-check --cta-trace "$out/trace-{n}.csv" --format jsonl
fi
cluster_round 2 "${PEERS_AFTER:-20}"
if (( $(left) > 150 )); then
  # shellcheck source=tools/peers/wheels_env.sh
  source tools/peers/wheels_env.sh
  install_peer_wheels run.sh "$out/pip.log"
  peers=()
  for wl in "--tree 1,4,16,64,256,1024_256,32,256,64,32,256 --heads 32/32" \
    "--tree 1,16,32,64,128,1024_256,128,64,32,32,32 --heads 32/32" "--tree 1,16,32,64,256,1024_256,128,64,32,32,32 --heads 32/32" \
    "--tree 1,8,16,32,64,128,1024_256,128,64,32,32,32,32 --heads 32/32" \
    "--tree 1,8,16,32,64,256,1024_256,128,64,32,32,32,32 --heads 32/32" "--tree 4,16,256,512_512,32,128,32 --heads 32/32"; do
    peers+=(--workload "$wl")
  done
  PYTHONUNBUFFERED=1 timeout "$(cap 600)" python3 tools/peers/suite.py --patlab /tmp/ab/patlab-c "${peers[@]}" \
    --out "$out/peers" --peers fasttree,deft --graph --budget $(( $(left) - 45 )) > "$out/peers.log" 2>&1
  echo "peers exit $? at $SECONDS s: $(tail -1 "$out/peers.log")"
fi
exit 0
