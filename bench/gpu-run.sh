#!/usr/bin/env bash
# A lent GPU's measurements for issue 3, in one call: hlm's self-check on the GPU, the train
# step of the small preset (16×512, vocabulary 50,257, AdamW) in hlm and in PyTorch eager (fp32
# with TF32 off, then TF32, then bf16 autocast) on the same machine, a short small-preset
# pretraining run, a sweep of tiny-encoder settings, and the matmul shapes beside PyTorch's.
# On the device machine, after `npm run build` and ../shared/gpu/pack.sh here:
#   source .gpu/boot.sh && bash bench/gpu-run.sh
# STAGES picks the parts (default: all, in this order): check torch train pretrain sweep matmul. train and pretrain
# also run at --precision f16 (F16_PRETRAIN= leaves out the f16 pretraining run).
# WGSL_VARIANTS: shader folders whose 4096³ matmul `check` also times (HLM_WGSL_DIR each).
# Data: .gpudata/{enwiki20,wikitext-valid,wiki63}.bin, token shards made here (git-ignored).
# Results go to $RES (default /tmp/hlm-gpu). QUICK=1 runs tiny sizes (to try it on a CPU: DEVICE=cpu, and PYTHON a
# python3 with torch).
set -uo pipefail
RES=${RES:-/tmp/hlm-gpu}; mkdir -p "$RES"
D=.gpudata; P=${QUICK:+tiny}; P=${P:-small}; DEV=${DEVICE:-gpu}
STAGES=${STAGES:-check torch train pretrain sweep matmul}
STEPS=${STEPS:-300}; SWEEP_STEPS=${SWEEP_STEPS:-300}; REPS=${REPS:-20}
say() { echo "== $(date +%T) $*" >&2; }
on() { [[ " $STAGES " == *" $1 "* ]]; }

if on check; then
  say devices; timeout 120 node bin/run.js devices --json > "$RES/devices.json"; head -c 600 "$RES/devices.json"; echo
  say check; timeout 180 node bin/run.js check --device "$DEV" --size 4096 2>&1 | tail -18
  for v in ${WGSL_VARIANTS:-}; do
    say "check with shaders from $v"
    HLM_WGSL_DIR=$PWD/$v timeout 120 node bin/run.js check --device "$DEV" --size 4096 2>&1 \
      | grep -E "^(fail|matmul [0-9])"
  done
fi

if on torch && [[ -z ${QUICK:-} ]]; then
  say "PyTorch train step ($P)"
  node bin/run.js bench --suite train --filter "train-$P/" --list > /tmp/tests.jsonl
  for prec in ${PRECISIONS:-fp32 tf32 bf16}; do
    PYTHONUNBUFFERED=1 timeout 180 "${PYTHON:-python3}" bench/torch_bench.py --tests /tmp/tests.jsonl \
      --precision $prec --reps "$REPS" --out "$RES/torch-$prec.jsonl"
  done
fi

if on train; then
  say "hlm train step ($P)"
  # --top: each dispatch's in-step GPU time (the matmul stage's isolated rates are read beside it), kept in a file.
  timeout 300 node bin/run.js bench --suite train --filter "train-$P/" --device "$DEV" --reps "$REPS" --top 40 \
    --out "$RES/hlm-train.jsonl" 2> >(tee "$RES/hlm-train-top.txt" >&2)
  [[ -f $RES/torch-fp32.jsonl ]] && node bin/run.js bench --from "$RES/hlm-train.jsonl" \
    --compare "$RES/torch-fp32.jsonl" --threshold 100% --format md | tee "$RES/compare-train.md"
  # Mixed precision (issue 15): its records carry params.precision f16, so read them beside torch's bf16 ones.
  say "hlm train step ($P), --precision f16"
  timeout 300 node bin/run.js bench --suite train --precision f16 --filter "train-$P/" --device "$DEV" \
    --reps "$REPS" --top 12 --out "$RES/hlm-train-f16.jsonl"
  # The subgroup-matrix (tensor core) products: experimental, so asked for; the records' params.f16_kernels say
  # whether the device kept them (a failed first-use check falls back to shader-f16 with a log line).
  say "hlm train step ($P), --precision f16 on subgroup matrices"
  HLM_EXPERIMENTAL=subgroup-matrix timeout 300 node bin/run.js bench --suite train --precision f16 \
    --filter "train-$P/" --device "$DEV" --reps "$REPS" --top 12 --out "$RES/hlm-train-f16-matrices.jsonl"
fi

if on pretrain; then
  say "pretrain $P decoder, $STEPS steps"
  timeout 400 node bin/run.js pretrain --arch decoder --objective ce --preset "$P" --data $D/enwiki20.bin \
    --eval-data $D/wikitext-valid.bin --steps "$STEPS" --eval-every 100 --eval-batches 20 --log-every 50 \
    --out /tmp/pre-$P --device "$DEV" --json > "$RES/pretrain-$P.json"
  tail -c 600 "$RES/pretrain-$P.json"; echo; cp /tmp/pre-$P/metrics.jsonl "$RES/pretrain-$P-metrics.jsonl" 2>/dev/null
  if [[ -n ${F16_PRETRAIN-1} ]]; then
    say "pretrain $P decoder, $STEPS steps, --precision f16 (its validation loss beside the f32 run's)"
    timeout 400 node bin/run.js pretrain --arch decoder --objective ce --preset "$P" --data $D/enwiki20.bin \
      --eval-data $D/wikitext-valid.bin --steps "$STEPS" --eval-every 100 --eval-batches 20 --log-every 50 \
      --precision f16 --out /tmp/pre-$P-f16 --device "$DEV" --json > "$RES/pretrain-$P-f16.json"
    tail -c 600 "$RES/pretrain-$P-f16.json"; echo
    cp /tmp/pre-$P-f16/metrics.jsonl "$RES/pretrain-$P-f16-metrics.jsonl" 2>/dev/null
  fi
fi

if on sweep; then
  say "tiny encoder sweep, $SWEEP_STEPS steps, held-out wiki_63"
  for B in ${SWEEP_B:-16 32 64}; do for LR in ${SWEEP_LR:-3e-3 6e-3 1.2e-2}; do
    r=$(timeout 120 node bin/run.js pretrain --arch encoder --objective ce --preset tiny --data $D/enwiki20.bin \
      --eval-data $D/wiki63.bin --steps "$SWEEP_STEPS" --batch-size "$B" --lr "$LR" --eval-every "$SWEEP_STEPS" \
      --eval-batches 40 --out /tmp/enc-$B-$LR --device "$DEV" --json 2>/dev/null)
    echo "{\"B\":$B,\"lr\":$LR,\"result\":${r:-null}}" >> "$RES/sweep.jsonl"
    node -e 'const r = JSON.parse(process.argv[1] || "null");
      const what = r ? `last loss ${r.finalLoss.toFixed(3)} held-out ${r.valLoss?.toFixed(3)}` : "failed";
      const speed = r ? ` ${r.tokensPerSecond.toFixed(0)} tok/s` : "";
      console.log(`B=${process.argv[2]} lr=${process.argv[3]}: ${what}${speed}`)' \
      "$r" $B $LR
  done; done
fi

if on matmul; then
  # Issue 14: the square product at MM_SIZE (default 4096) against cuBLAS fp32, sustained, then every linear layer's
  # products on the small preset's shapes; their in-step GPU times are the train stage's hlm-train-top.txt.
  # QUICK=1: the square products at 128³ alone.
  mm_size=${MM_SIZE:-${QUICK:+128}}; mm_size=${mm_size:-4096}; mm_filter=${QUICK:+matmul/square}
  layers=", and the layers of the small preset"; [[ -n ${QUICK:-} ]] && layers=""
  say "matmul kernels, hlm and PyTorch fp32 (square ${mm_size}³$layers)"
  node bin/run.js bench --suite kernel --filter "${mm_filter:-matmul/}" --size "$mm_size" --list > /tmp/mm.jsonl
  PYTHONUNBUFFERED=1 timeout 150 "${PYTHON:-python3}" bench/torch_bench.py --tests /tmp/mm.jsonl --reps 10 \
    --out "$RES/torch-matmul.jsonl"
  timeout 240 node bin/run.js bench --suite kernel --filter "${mm_filter:-matmul/}" --size "$mm_size" \
    --device "$DEV" --reps 10 --top 3 --out "$RES/hlm-matmul.jsonl" 2> >(tee "$RES/hlm-matmul-top.txt" >&2)
  node bin/run.js bench --from "$RES/hlm-matmul.jsonl" --compare "$RES/torch-matmul.jsonl" --threshold 100% \
    --format md | tee "$RES/compare-matmul.md"
  if [[ -z ${QUICK:-} ]]; then
    say "matmul-f16 4096³ on subgroup matrices (issue 15)"
    HLM_EXPERIMENTAL=subgroup-matrix timeout 180 node bin/run.js bench --suite kernel --filter matmul-f16 \
      --size 4096 --device "$DEV" --reps 10 --out "$RES/hlm-matmul-f16-matrices.jsonl"
  fi
fi
say done
