#!/usr/bin/env bash
# One lent-GPU call. Its default stages measure what issue 14 asks of a GPU: hlm's self-check there, the small
# preset's train step (16×512, vocabulary 50,257, AdamW) in hlm and in PyTorch eager fp32 with TF32 off (CE and CWT),
# and the matmuls beside PyTorch's: the square product at 4096³ (MM_SIZE) and every linear layer's products on the
# small preset's shapes, sustained, beside their in-step GPU times (the train stage's --top, set side by side by
# bench/instep-compare.mjs in compare-instep.md: issue 14 asks for within 10%).
# Here first (after `npm run build`): bash bench/gpu-prep.sh. It packs .gpu/, tokenises .gpudata/, checks the call's
# size against the device tool's limit and prints the call. There:
#   source .gpu/boot.sh && bash bench/gpu-run.sh
# STAGES (default: check torch train matmul) may add f16 (the train step at --precision f16 on shader-f16 and on
# subgroup matrices, beside PyTorch's bf16 autocast), pretrain (a 300-step small-preset run, f32 then f16;
# F16_PRETRAIN= leaves the f16 run out) and sweep (tiny-encoder batch sizes × learning rates). PRECISIONS overrides
# PyTorch's (fp32, plus bf16 with f16; tf32 is the third).
# The lease is short: no command starts after DEADLINE seconds (default 540) from the script's start, and each
# command's timeout is cut to what is left, so a 600 s call comes back with what was measured. Where $OUT is set
# (the device tool), the results folder RES (default /tmp/hlm-gpu) is packed into $OUT/hlm-gpu.tgz after every stage
# and the whole output goes to $OUT/gpu-run.log: two files, of the at most eight that come back.
# QUICK=1 runs tiny sizes (to try it on a CPU: DEVICE=cpu, and PYTHON a python3 with torch).
set -uo pipefail
RES=${RES:-/tmp/hlm-gpu}; mkdir -p "$RES"
D=.gpudata; P=${QUICK:+tiny}; P=${P:-small}; DEV=${DEVICE:-gpu}
STAGES=${STAGES:-check torch train matmul}
STEPS=${STEPS:-300}; SWEEP_STEPS=${SWEEP_STEPS:-300}; REPS=${REPS:-20}
START=$(date +%s); DEADLINE=${DEADLINE:-540}
teepid=""
if [[ -n ${OUT:-} ]]; then exec > >(tee -a "$OUT/gpu-run.log") 2>&1; teepid=$!; fi
say() { echo "== $(date +%T) $*" >&2; }
left() { echo $((START + DEADLINE - $(date +%s))); }
want() { [[ " $STAGES " == *" $1 "* ]]; }
# A stage runs when asked for and while at least 30 s of the deadline are left.
on() {
  want "$1" || return 1
  (($(left) >= 30)) && return 0
  say "stage $1 skipped: $(left) s left before DEADLINE"
  return 1
}
# tmo SECONDS command...: timeout at SECONDS or what is left of the deadline, whichever is less.
tmo() {
  local t=$1 l; l=$(left); shift
  ((l < t)) && t=$l
  if ((t < 5)); then say "not run (DEADLINE): $*"; return 124; fi
  timeout "$t" "$@"
}
# After each stage: the results so far, where the device tool fetches them.
keep() { [[ -n ${OUT:-} ]] && tar -czf "$OUT/hlm-gpu.tgz" -C "$RES" . ; return 0; }

for s in $STAGES; do
  case $s in
    check | torch | train | f16 | matmul | pretrain | sweep) ;;
    *) echo "gpu-run.sh: unknown stage $s" >&2; exit 2 ;;
  esac
done
need=()
want pretrain && need+=("$D/enwiki12.bin" "$D/wikitext-valid.bin")
want sweep && need+=("$D/enwiki12.bin" "$D/wiki63.bin")
for f in "${need[@]}"; do
  [[ -f $f ]] || { echo "gpu-run.sh: $f: no such file; make it here with bash bench/gpu-prep.sh" >&2; exit 2; }
done

if on check; then
  say devices; tmo 60 node bin/run.js devices --json > "$RES/devices.json"; head -c 600 "$RES/devices.json"; echo
  cs=${QUICK:+256}; say check; tmo 180 node bin/run.js check --device "$DEV" --size "${cs:-4096}" 2>&1 | tail -18
  keep
fi

if on torch && [[ -z ${QUICK:-} ]]; then
  say "PyTorch train step ($P)"
  node bin/run.js bench --suite train --filter "train-$P/" --list > /tmp/tests.jsonl
  precs=${PRECISIONS:-fp32$(want f16 && echo ' bf16')}
  for prec in $precs; do
    PYTHONUNBUFFERED=1 tmo 180 "${PYTHON:-python3}" bench/torch_bench.py --tests /tmp/tests.jsonl \
      --precision "$prec" --reps "$REPS" --out "$RES/torch-$prec.jsonl"
  done
  keep
fi

if on train; then
  say "hlm train step ($P)"
  # --top: every dispatch's in-step GPU time (the matmul stage's isolated rates are read beside it), kept in a file.
  tmo 300 node bin/run.js bench --suite train --filter "train-$P/" --device "$DEV" --reps "$REPS" --top 400 \
    --out "$RES/hlm-train.jsonl" 2> >(tee "$RES/hlm-train-top.txt" >&2)
  [[ -f $RES/torch-fp32.jsonl ]] && node bin/run.js bench --from "$RES/hlm-train.jsonl" \
    --compare "$RES/torch-fp32.jsonl" --threshold 100% --format md > "$RES/compare-train.md"
  keep
fi

if on f16; then
  # Mixed precision (issue 15): its records carry params.precision f16, so read them beside torch's bf16 ones.
  say "hlm train step ($P), --precision f16"
  tmo 300 node bin/run.js bench --suite train --precision f16 --filter "train-$P/" --device "$DEV" \
    --reps "$REPS" --top 12 --out "$RES/hlm-train-f16.jsonl"
  # The subgroup-matrix (tensor core) products: experimental, so asked for; the records' params.f16_kernels say
  # whether the device kept them (a failed first-use check falls back to shader-f16 with a log line).
  say "hlm train step ($P), --precision f16 on subgroup matrices"
  HLM_EXPERIMENTAL=subgroup-matrix tmo 300 node bin/run.js bench --suite train --precision f16 \
    --filter "train-$P/" --device "$DEV" --reps "$REPS" --top 12 --out "$RES/hlm-train-f16-matrices.jsonl"
  keep
fi

if on matmul; then
  # The square product at MM_SIZE (default 4096) against cuBLAS fp32, sustained, then every linear layer's
  # products on the small preset's shapes; their in-step GPU times are the train stage's hlm-train-top.txt.
  # QUICK=1: the square products at 128³ alone.
  mm_size=${MM_SIZE:-${QUICK:+128}}; mm_size=${mm_size:-4096}; mm_filter=${QUICK:+matmul/square}
  layers=", and the layers of the small preset"; [[ -n ${QUICK:-} ]] && layers=""
  say "matmul kernels, hlm and PyTorch fp32 (square ${mm_size}³$layers)"
  node bin/run.js bench --suite kernel --filter "${mm_filter:-matmul/}" --size "$mm_size" --list > /tmp/mm.jsonl
  PYTHONUNBUFFERED=1 tmo 150 "${PYTHON:-python3}" bench/torch_bench.py --tests /tmp/mm.jsonl --reps 10 \
    --out "$RES/torch-matmul.jsonl"
  tmo 240 node bin/run.js bench --suite kernel --filter "${mm_filter:-matmul/}" --size "$mm_size" \
    --device "$DEV" --reps 10 --top 3 --out "$RES/hlm-matmul.jsonl" 2> >(tee "$RES/hlm-matmul-top.txt" >&2)
  node bin/run.js bench --from "$RES/hlm-matmul.jsonl" --compare "$RES/torch-matmul.jsonl" --threshold 100% \
    --format md > "$RES/compare-matmul.md"
  # Each layer product in the step (the train stage's --top) beside the same product alone.
  [[ -z ${QUICK:-} && -s $RES/hlm-train-top.txt ]] && node bench/instep-compare.mjs "$RES/hlm-train-top.txt" \
    "$RES/hlm-matmul.jsonl" > "$RES/compare-instep.md"
  if want f16 && [[ -z ${QUICK:-} ]]; then
    say "matmul-f16 4096³ on subgroup matrices (issue 15)"
    HLM_EXPERIMENTAL=subgroup-matrix tmo 180 node bin/run.js bench --suite kernel --filter matmul-f16 \
      --size 4096 --device "$DEV" --reps 10 --out "$RES/hlm-matmul-f16-matrices.jsonl"
  fi
  keep
fi

if on pretrain; then
  say "pretrain $P decoder, $STEPS steps"
  tmo 400 node bin/run.js pretrain --arch decoder --objective ce --preset "$P" --data $D/enwiki12.bin \
    --eval-data $D/wikitext-valid.bin --steps "$STEPS" --eval-every 100 --eval-batches 20 --log-every 50 \
    --out /tmp/pre-$P --overwrite --device "$DEV" --json > "$RES/pretrain-$P.json"
  tail -c 600 "$RES/pretrain-$P.json"; echo; cp /tmp/pre-$P/metrics.jsonl "$RES/pretrain-$P-metrics.jsonl" 2>/dev/null
  if [[ -n ${F16_PRETRAIN-1} ]]; then
    say "pretrain $P decoder, $STEPS steps, --precision f16 (its validation loss beside the f32 run's)"
    tmo 400 node bin/run.js pretrain --arch decoder --objective ce --preset "$P" --data $D/enwiki12.bin \
      --eval-data $D/wikitext-valid.bin --steps "$STEPS" --eval-every 100 --eval-batches 20 --log-every 50 \
      --precision f16 --out /tmp/pre-$P-f16 --overwrite --device "$DEV" --json > "$RES/pretrain-$P-f16.json"
    tail -c 600 "$RES/pretrain-$P-f16.json"; echo
    cp /tmp/pre-$P-f16/metrics.jsonl "$RES/pretrain-$P-f16-metrics.jsonl" 2>/dev/null
  fi
  keep
fi

if on sweep; then
  say "tiny encoder sweep, $SWEEP_STEPS steps, held-out wiki_63"
  for B in ${SWEEP_B:-16 32 64}; do for LR in ${SWEEP_LR:-3e-3 6e-3 1.2e-2}; do
    r=$(tmo 120 node bin/run.js pretrain --arch encoder --objective ce --preset tiny --data $D/enwiki12.bin \
      --eval-data $D/wiki63.bin --steps "$SWEEP_STEPS" --batch-size "$B" --lr "$LR" --eval-every "$SWEEP_STEPS" \
      --eval-batches 40 --out /tmp/enc-$B-$LR --overwrite --device "$DEV" --json 2>/dev/null)
    echo "{\"B\":$B,\"lr\":$LR,\"result\":${r:-null}}" >> "$RES/sweep.jsonl"
    node -e 'let r = null; try { r = JSON.parse(process.argv[1]); } catch {}
      const ok = typeof r?.finalLoss === "number";
      const what = ok ? `last loss ${r.finalLoss.toFixed(3)} held-out ${r.valLoss?.toFixed(3)}` : "failed";
      const why = ok ? ` ${r.tokensPerSecond.toFixed(0)} tok/s` : r?.error?.message ? `: ${r.error.message}` : "";
      console.log(`B=${process.argv[2]} lr=${process.argv[3]}: ${what}${why}`)' "$r" $B $LR
  done; done
  keep
fi

# Last, so that the reply's tail holds them: the side-by-side tables.
for f in "$RES"/compare-*.md; do [[ -f $f ]] && { say "${f##*/}"; cat "$f"; }; done
say "done in $(($(date +%s) - START)) s"
# Let the log's tee finish before the call returns.
if [[ -n $teepid ]]; then exec >&- 2>&-; wait "$teepid"; fi
