#!/bin/sh
# Issue 14's CPU figures in one run: the 512³ matmuls (every transpose) and the tiny train step (4×64, CE and
# CWT, AdamW), hlm on the software adapter beside PyTorch on the CPU (fp32, 2 threads), the same tests and shapes,
# in ROUNDS (default 3) rounds of PyTorch then hlm. compare-median.md sets each side's median run per test beside
# the other's, with the runs' range (a VM's rate moves by half within minutes: one pair of runs can read 0.2× or
# 0.35×); compare-roundN.md is round N's pair alone. With BASE naming a built checkout of an older commit, also
# issue 13's regression check: that build's `bench --suite kernel,train --quick` before and after this one's, all
# timed isolated (older builds have no sustained mode). SKIP_TORCH=1 runs the base comparison alone.
#   sh bench/cpu-run.sh [out dir]      e.g. BASE=/work/base sh bench/cpu-run.sh bench/results/cpu-2026-12-02
# PyTorch needs an optimised BLAS: Debian's python3-torch on a fresh machine runs on the reference BLAS (3 GFLOP/s at
# 512³); `apt-get install libopenblas0-pthread` first. The script refuses to compare against the reference BLAS.
set -eu
out=${1:-bench/results/cpu-$(date +%F)}
mkdir -p "$out"
compare() { ./bin/run.js bench --from "$1" --compare "$2" --threshold 100% --format md > "$3" || true; }
if [ -z "${SKIP_TORCH:-}" ]; then
  blas=$(readlink -f /usr/lib/x86_64-linux-gnu/libblas.so.3 2>/dev/null || true)
  case "$blas" in
    */blas/libblas.so.3*)
      echo "bench/cpu-run.sh: PyTorch would run on the reference BLAS ($blas); install libopenblas0-pthread" >&2
      exit 1 ;;
  esac
  filter='matmul/square|train-tiny'
  uptime > "$out/load-torch.txt"
  ./bin/run.js bench --suite kernel,train --quick --size 512 --filter "$filter" --list > "$out/tests.jsonl"
  torch() {
    OMP_NUM_THREADS=2 /usr/bin/python3 bench/torch_bench.py --tests "$out/tests.jsonl" --device cpu --out "$1"
  }
  rounds=${ROUNDS:-3} r=1 hlm_runs="" torch_runs=""
  while [ "$r" -le "$rounds" ]; do
    torch "$out/torch$r.jsonl"
    ./bin/run.js bench --suite kernel,train --quick --size 512 --filter "$filter" --out "$out/hlm$r.jsonl"
    compare "$out/hlm$r.jsonl" "$out/torch$r.jsonl" "$out/compare-round$r.md"
    hlm_runs="$hlm_runs${hlm_runs:+,}$out/hlm$r.jsonl" torch_runs="$torch_runs${torch_runs:+,}$out/torch$r.jsonl"
    r=$((r + 1))
  done
  uptime >> "$out/load-torch.txt"
  compare "$hlm_runs" "$torch_runs" "$out/compare-median.md"
  cat "$out/compare-median.md"
fi
if [ -n "${BASE:-}" ]; then
  uptime > "$out/load-base.txt"
  "$BASE/bin/run.js" bench --suite kernel,train --quick --out "$out/base.jsonl"
  ./bin/run.js bench --suite kernel,train --quick --timing isolated --out "$out/head.jsonl"
  "$BASE/bin/run.js" bench --suite kernel,train --quick --out "$out/base2.jsonl"
  uptime >> "$out/load-base.txt"
  compare "$out/head.jsonl" "$out/base.jsonl" "$out/compare-base.md"
  compare "$out/head.jsonl" "$out/base2.jsonl" "$out/compare-base2.md"
fi
