#!/usr/bin/env bash
# Profiles for the tutorial: ncu on the stages of three workloads, and the KV-tile cap experiment.
set -u
R=$1; B=$R/build-gpu; P=$B/tools/patlab; O=$2
export PATH=/usr/local/cuda/bin:$PATH
cd $R && meson setup $B --buildtype=release -Dgpu_arch=90 -Dcommit=$3 > /dev/null 2>&1; ninja -C $B tools/patlab > /dev/null 2>&1 || exit 1
sec="--section SpeedOfLight --section MemoryWorkloadAnalysis --section Occupancy --section LaunchStats --section WarpStateStats"
prof() {  # name, stage, kernel regex, workload args...
  local name=$1 st=$2 k=$3; shift 3
  ncu --clock-control none -k regex:$k --launch-skip 5 --launch-count 3 $sec $P bench "$@" --stage $st --no-check --repeats 20 --warmup 5 --no-graph > /tmp/ncu_$name.txt 2>&1
  echo "== $name: patlab bench $* --stage $st (kernels matching $k)" >> $O/ncu.txt
  grep -E "^  [a-z_].*\(|Duration|DRAM Throughput|Memory Throughput|L2 Hit Rate|Achieved Occupancy|Theoretical Occupancy|Registers Per|Block Limit (Registers|Shared)|Dynamic Shared|Compute \(SM\) Throughput|Warp Cycles Per Issued" /tmp/ncu_$name.txt >> $O/ncu.txt
}
prof gqa_4_32768 gqa gqa_decode --tree 4_32768
prof splitkv_4_32768 splitkv splitkv_decode --tree 4_32768
prof pat_4_32768 pat pack_attention --tree 4_32768
prof naive_sys naive naive_decode sysprompt
prof gqa_sys gqa gqa_decode sysprompt
prof packed_sys packed pack_attention sysprompt
prof pat_sys pat pack_attention sysprompt
prof pat_long pat pack_attention --tree 1,128_16384,256
prof gqa_nosharing gqa gqa_decode --tree 256_1024 --heads 32/32
prof pat_nosharing pat pack_attention --tree 256_1024 --heads 32/32
for w in "sysprompt" "--tree 1,128_16384,256" "--tree 1,4,16,512_1024,256,128,32 --heads 64/8" "--tree 256_1024 --heads 32/32" "--tree 4_32768" "--tree 1,10_4096,416 --heads 32/32"; do
  for cap in 64 128; do
    echo "{\"args\": \"$w\", \"max_kv_tile\": $cap, \"bench\": $($P bench $w --stage multitile pat --max-kv-tile $cap --repeats 20 --format json 2>/dev/null)}" >> $O/kv_tile.jsonl
  done
done
tail -3 $O/kv_tile.jsonl | cut -c1-300
