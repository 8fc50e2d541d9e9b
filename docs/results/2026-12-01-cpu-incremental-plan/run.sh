#!/bin/sh
# CPU timings of `patlab plan --incremental` on the dev machine (not the H200 host).
# Run from the repository root after: meson setup build -Dcuda=disabled -Ddocs=disabled && ninja -C build
set -e
out=$(dirname "$0")
{
  echo "commit $(git rev-parse HEAD)"
  echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
  echo "load average $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$out/env.txt"
for w in "1,4,256_1024,256,32" "1,4,256_1024,256,32 --heads 64/4" "256_1024" "sysprompt" "1,8,1024_2048,512,64"; do
  echo "\$ build/tools/patlab plan $w --incremental 1000"
  build/tools/patlab plan $w --incremental 1000
  echo
done > "$out/incremental.txt"
