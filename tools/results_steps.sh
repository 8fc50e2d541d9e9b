# Sourced by the run scripts of docs/results/*/ (bash): the time budget of one device call, the
# names of its output files and its binaries, written once. Expects `budget` (seconds) set by the
# script, or by results_args.
#   results_args "$0" "$@"
#                       the prologue: set -uo pipefail, final=OUT and budget=SECONDS (default 540)
#                       from the script's arguments, cd to the repository root
#   left                seconds of the budget left
#   cap N               N, or what is left of the budget when that is less (at least 1): a step's timeout
#   slug TEXT           TEXT as a file-name part (lower-case letters and digits, runs of others as '_')
#   unpack NAME...      build-ab/NAME.xz (a binary built on the workstation) into /tmp/ab/NAME, or
#                       member NAME of build-ab/bundle.tar.xz where there is no NAME.xz: stripped
#                       binaries that share most of their code compress together to about a fifth
#                       of their separate .xz files, so one call can carry them all under its limit:
#                         tar -C DIR -cf - NAME... | xz --lzma2=preset=6,dict=256MiB > build-ab/bundle.tar.xz
#   device_env NAME...  the GPU, the date and the version line of each unpacked /tmp/ab/NAME
#   results_begin RUN FINAL NAME...
#                       the prologue of a run script: out=/tmp/RUN (created), FINAL/RUN.tar.gz written
#                       from it on exit (results_save), NAME... unpacked and their device_env in
#                       out/env.txt
#   results_save        FINAL/RUN.tar.gz written again from /tmp/RUN (nothing before results_begin):
#                       the steps below call it after each test, workload and sanitizer case, so a
#                       call killed at its time limit still brings back every step it finished (the
#                       archive is written under RUN.tar.gz.part and renamed, so a kill mid-write
#                       leaves the last whole one)
#   sanitize_prep [NAME]
#                       compute-sanitizer on PATH, its version in out/env.txt, and the unpacked
#                       /tmp/ab/NAME (default patlab) as /tmp/sb/tools/patlab: tools/sanitize.sh
#                       /tmp/sb runs it
#   on_h200             true when the GPU is an H200 (the runs whose numbers are the issues' own)
#   run_tests NAME...   each unpacked test binary /tmp/ab/NAME with PATLAB_REQUIRE_GPU=1 (a skip
#                       fails), its log in out/test-NAME.log, one line each with its verdict
#   tests_while LEFT NAME...
#                       run_tests of each NAME while at least LEFT seconds of the budget are left
#   issue12_lines       the numbers (suite_workloads' N) of issue 12's 67 lines: the shared-prefix
#                       workloads of >= 128 MB unique bytes (../docs/results/2026-12-04-h200-tall-tiles/issue12.py)
#   suite_bench BIN LINES FIRST OPTS...
#                       `/tmp/ab/BIN bench W OPTS... --repeats 20 --no-check --format jsonl` per line
#                       N >= FIRST of suite_workloads listed in LINES (space-separated) into
#                       out/suite/N.jsonl (.err), while at least 15 seconds are left
#   bench_each LIST NAME STOP CAP COMMAND...
#                       per workload W of LIST ('|'-separated; the N-th), `COMMAND... W` with every
#                       {n} in COMMAND replaced by N, stdout into out/NAME-N.jsonl and stderr into
#                       out/NAME-N.err, each under a timeout of CAP seconds (cap), while at least
#                       STOP seconds are left
#   fsa_h200_groups NAME STOP
#                       on an H200 only: `/tmp/ab/NAME sparse --method fsa --quiet --format json` at
#                       groups 1 and 2 on 256 requests over a 16K prefix (issue 17's numbers, on the
#                       card it names) into out/ring2/r-N.jsonl, while STOP seconds are left
#   sparse_memcheck NAME [OPTION...]
#                       compute-sanitizer memcheck of `/tmp/ab/NAME sparse --method fsa OPTION...` on
#                       two small FSA cases (GQA at d = 64 with a clamp; top-8 at group 4), each
#                       line's exit and the tool's report in out/sanitize.log, while at least 30
#                       seconds are left
#   suite_workloads     every workload line of tools/suite.txt then tools/suite-categories.txt as
#                       "N WORKLOAD" (N counts workload lines from 1, the numbers of RUN/suite/N.jsonl;
#                       a line's text from its first '#' on, and blank lines, skipped)
#   ab_runs LEFT W...   two binaries A/B: per workload W (patlab bench options, the N-th), `bench W
#                       --stage pat hopper --repeats 20` with /tmp/ab/patlab (A) and /tmp/ab/patlab-b
#                       (B) in the order A, B, A, B (side a or b, round K = 1, 2; only B's first run
#                       checks against the oracle) into out/ab-N-SIDE-K.jsonl; stops when fewer than
#                       LEFT seconds of the budget are left. AB_STAGES="hopper cluster" benches
#                       those stages instead, AB_B=patlab-d takes /tmp/ab/patlab-d as B,
#                       AB_B_ARGS="--no-first-packs" adds those options to B's runs only (an
#                       option A may not have); a second A/B of one call goes into a folder of
#                       its own: (out=$out/x; mkdir -p "$out"; ab_runs ...)
results_args() {
  # the prologue every run script repeated: strict mode, FINAL and SECONDS from its arguments, the
  # working directory at the repository root (the script's folder is docs/results/NAME)
  set -uo pipefail
  final=${2:?usage: $1 OUT [SECONDS]}
  budget=${3:-540}
  cd "$(cd "$(dirname "$1")" && pwd)/../../.." || exit 1
}
left() { echo $(( budget - SECONDS )); }
cap() { local l; l=$(left); echo $(( l > $1 ? $1 : (l > 1 ? l : 1) )); }
slug() { echo "$1" | tr -c 'a-z0-9' '_' | tr -s '_'; }
unpack() {
  local n
  mkdir -p /tmp/ab
  for n in "$@"; do
    if [[ -f build-ab/$n.xz ]]; then
      xz -dc "build-ab/$n.xz" > "/tmp/ab/$n"
    else
      tar -xJf build-ab/bundle.tar.xz -C /tmp/ab "$n"
    fi && chmod +x "/tmp/ab/$n" || return 1
  done
}
device_env() {
  local n
  nvidia-smi --query-gpu=name,driver_version,clocks.max.sm --format=csv
  date -u
  # a test binary (Catch2) has no --version: its first line names the device, its usage error is dropped
  for n in "$@"; do echo "$n: $("/tmp/ab/$n" --version 2>/dev/null | head -1)"; done
}
results_begin() {
  local run=$1 final=$2
  shift 2
  out=/tmp/$run
  results_run=$run results_final=$final
  mkdir -p "$out" "$final"
  trap results_save EXIT
  unpack "$@" || return 1
  device_env "$@" > "$out/env.txt"
  cat "$out/env.txt"
}
results_save() {
  [[ -n ${results_run:-} ]] || return 0
  tar -C /tmp -czf "$results_final/$results_run.tar.gz.part" "$results_run" \
    && mv "$results_final/$results_run.tar.gz.part" "$results_final/$results_run.tar.gz"
}
sanitize_prep() {
  export PATH=/usr/local/cuda/bin:$PATH
  compute-sanitizer --version | tail -1 >> "$out/env.txt"
  mkdir -p /tmp/sb/tools && cp "/tmp/ab/${1:-patlab}" /tmp/sb/tools/patlab
}
on_h200() { nvidia-smi --query-gpu=name --format=csv,noheader | grep -q H200; }
run_tests() {
  local t
  for t in "$@"; do
    PATLAB_REQUIRE_GPU=1 timeout "$(cap 240)" "/tmp/ab/$t" > "$out/test-$t.log" 2>&1
    echo "$t exit $? at $SECONDS s: $(grep -E 'passed|failed' "$out/test-$t.log" | tail -1)"
    results_save
  done
}
suite_workloads() {
  local n=0 line wl
  while IFS= read -r line; do
    wl=$(echo "${line%%#*}" | xargs)
    [[ -z $wl ]] && continue
    n=$((n + 1))
    echo "$n $wl"
  done < <(cat tools/suite.txt tools/suite-categories.txt)
}
ab_runs() {
  local stop=$1 n=0 wl k side bin check extra
  shift
  for wl in "$@"; do
    n=$((n + 1))
    for k in 1 2; do
      for side in a b; do
        if (( $(left) < stop )); then echo "ab: stopped for time before $n $side$k"; return 0; fi
        bin=/tmp/ab/patlab extra=
        [[ $side == b ]] && bin=/tmp/ab/${AB_B:-patlab-b} extra=${AB_B_ARGS:-}
        check=--no-check; [[ $side$k == b1 ]] && check=
        # shellcheck disable=SC2086  # a workload, the stages and B's options are several words, on purpose
        timeout "$(cap 60)" "$bin" bench $wl $extra --stage ${AB_STAGES:-pat hopper} --repeats 20 $check --format jsonl \
          > "$out/ab-$n-$side-$k.jsonl" 2> "$out/ab-$n-$side-$k.err"
        echo "ab $n $side$k exit $? at $SECONDS s: $wl"
        results_save
      done
    done
  done
}
tests_while() {
  local stop=$1 t
  shift
  for t in "$@"; do
    if (( $(left) < stop )); then echo "tests: stopped for time before $t"; return 0; fi
    run_tests "$t"
  done
}
issue12_lines() {
  echo "1 5 9 10 11 12 13 17 21 22 23 24 25 26 27 28 29 30 31 32 33 37 41 42 43 44 45 46 47 48 49 50 51" \
       "52 53 54 55 56 57 58 59 60 61 65 66 67 68 69 81 82 83 91 93 95 97 98 99 100 101 103 106 107" \
       "108 112 113 114 115"
}
suite_bench() {
  local bin=$1 lines=" $2 " first=$3 n wl
  shift 3
  mkdir -p "$out/suite"
  while read -r n wl; do
    (( n < first )) && continue
    [[ $lines == *" $n "* ]] || continue
    if (( $(left) < 15 )); then echo "suite: stopped for time before line $n ($wl)"; return 0; fi
    # shellcheck disable=SC2086  # a workload is several words, on purpose
    timeout "$(cap 60)" "/tmp/ab/$bin" bench $wl "$@" --repeats 20 --no-check --format jsonl \
      > "$out/suite/$n.jsonl" 2> "$out/suite/$n.err"
    echo "suite $n exit $? at $SECONDS s: $wl"
    results_save
  done < <(suite_workloads)
}
bench_each() {
  local list=$1 name=$2 stop=$3 limit=$4 n=0 wl a
  shift 4
  local -a wls args
  IFS='|' read -r -a wls <<< "$list"
  for wl in "${wls[@]}"; do
    n=$((n + 1))
    if (( $(left) < stop )); then echo "$name: stopped for time before $n"; return 0; fi
    args=()
    for a in "$@"; do args+=("${a//\{n\}/$n}"); done
    # shellcheck disable=SC2086  # a workload is several options, on purpose
    timeout "$(cap "$limit")" "${args[@]}" $wl > "$out/$name-$n.jsonl" 2> "$out/$name-$n.err"
    echo "$name $n exit $? at $SECONDS s: $wl"
    results_save
  done
}
fsa_h200_groups() {
  on_h200 || return 0
  local w="--tree 1,256_16384,512"
  mkdir -p "$out/ring2"
  out=$out/ring2 bench_each "$w --heads 8/8|$w --heads 16/8" r "$2" 90 "/tmp/ab/$1" sparse --method fsa --quiet \
    --format json
}
sparse_memcheck() {
  local wl bin=$1
  shift
  for wl in "--tree 1,4_300,100 --heads 8/2 --head-dim 64 --clamp" "--tree 1,40_2048,64 --heads 32/8 --top-n 8"; do
    if (( $(left) < 30 )); then echo "stopped for time before memcheck $wl"; return 0; fi
    # shellcheck disable=SC2086  # a workload is several words, on purpose
    timeout "$(cap 60)" compute-sanitizer --tool memcheck --error-exitcode 9 "/tmp/ab/$bin" sparse $wl \
      --method fsa "$@" --repeats 20 --warmup 0 --quiet --format json > /dev/null 2>> "$out/sanitize.log"
    echo "memcheck exit $? at $SECONDS s: $wl" | tee -a "$out/sanitize.log"
    results_save
  done
}
