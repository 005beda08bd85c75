#!/bin/sh
# Issue 14's CPU figures in one run: the 512³ matmuls (every transpose) and the tiny train step (4×64, CE and
# CWT, AdamW), hlm on the software adapter beside PyTorch on the CPU (fp32, 2 threads), the same tests and shapes.
# Also issue 13's regression check when BASE names a built checkout of an older commit: its `bench --quick`
# beside this one's, alternated, both isolated-timed (older builds have no sustained mode).
#   sh bench/cpu-run.sh [out dir]      e.g. BASE=/work/base sh bench/cpu-run.sh bench/results/cpu-2026-12-02
set -eu
out=${1:-bench/results/cpu-$(date +%F)}
mkdir -p "$out"
filter='matmul/square|train-tiny'
uptime > "$out/load.txt"
./bin/run.js bench --suite kernel,train --quick --size 512 --filter "$filter" --list > "$out/tests.jsonl"
OMP_NUM_THREADS=2 /usr/bin/python3 bench/torch_bench.py --tests "$out/tests.jsonl" --device cpu --out "$out/torch.jsonl"
./bin/run.js bench --suite kernel,train --quick --size 512 --filter "$filter" --out "$out/hlm.jsonl"
OMP_NUM_THREADS=2 /usr/bin/python3 bench/torch_bench.py --tests "$out/tests.jsonl" --device cpu --out "$out/torch2.jsonl"
uptime >> "$out/load.txt"
./bin/run.js bench --from "$out/hlm.jsonl" --compare "$out/torch.jsonl" --threshold 100% --format md \
  > "$out/compare-torch.md" || true
./bin/run.js bench --from "$out/hlm.jsonl" --compare "$out/torch2.jsonl" --threshold 100% --format md \
  > "$out/compare-torch2.md" || true
if [ -n "${BASE:-}" ]; then
  "$BASE/bin/run.js" bench --suite kernel,train --quick --out "$out/base.jsonl"
  ./bin/run.js bench --suite kernel,train --quick --timing isolated --out "$out/head.jsonl"
  "$BASE/bin/run.js" bench --suite kernel,train --quick --out "$out/base2.jsonl"
  uptime >> "$out/load.txt"
  ./bin/run.js bench --from "$out/head.jsonl" --compare "$out/base.jsonl" --threshold 100% --format md \
    > "$out/compare-base.md" || true
  ./bin/run.js bench --from "$out/head.jsonl" --compare "$out/base2.jsonl" --threshold 100% --format md \
    > "$out/compare-base2.md" || true
fi
