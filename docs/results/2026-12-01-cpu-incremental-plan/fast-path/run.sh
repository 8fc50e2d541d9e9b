#!/bin/sh
# The incremental planner before and after its fast path, on the CPU build machine.
# NEW: this commit's build (meson setup build -Dcuda=disabled -Ddocs=disabled; release);
# OLD: the same build of commit f682b91 (git archive f682b91 into another directory).
# Runs alternate OLD and NEW so that both see the same load on the shared machine.
# Usage, from the repository root: run.sh NEW_PATLAB OLD_PATLAB (writes next to this script)
set -u
NEW=$1; OLD=$2; OUT=$(dirname "$0")
{
  echo "commit $(git rev-parse HEAD) (NEW: $($NEW --version); OLD: f682b91, $($OLD --version))"
  echo "date $(date -u +%Y-%m-%dT%H:%M:%SZ)"
  echo "cpu $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //') x $(nproc)"
  echo "load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
} > "$OUT/env.txt"
TRACE=gen:requests=256,rate=0,prompt=128,output=512,sigma=0.01,system=2048x1,seed=1
FORKS=gen:requests=40,rate=10,prompt=100,output=50,system=200x0.5,n=2,seed=3
for rep in 1 2 3; do
  for t in 1,4,256_1024,256,32 256_1024 1,8,1024_2048,512,64; do
    for who in old new; do
      bin=$NEW; [ $who = old ] && bin=$OLD
      echo "== $who rep $rep: plan --tree $t --incremental 1000"
      $bin plan --tree $t --incremental 1000
    done
  done
done > "$OUT/incremental.txt" 2>&1
for who in old new; do
  bin=$NEW; [ $who = old ] && bin=$OLD
  echo "== $who: serve $TRACE --stage pat --layers 1 --steps 300 --compare-scratch"
  $bin serve $TRACE --stage pat --layers 1 --steps 300 --compare-scratch --quiet; echo "exit $?"
  echo "== $who: serve $FORKS --compare-scratch"
  $bin serve $FORKS --compare-scratch --quiet; echo "exit $?"
done > "$OUT/serve.txt" 2>&1
echo "load average at end $(cut -d' ' -f1-3 /proc/loadavg)" >> "$OUT/env.txt"
