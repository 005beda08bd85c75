#!/bin/bash
# The three headless experiments of 2026-12-02 (README, Experiments), from the repository root on the 2-core VM. The
# decoder and XNLI ran together (XNLI with a 10-minute budget, four languages and one seed); the encoder ran in a later
# session, alone but beside other work, with three seeds and one fine-tuning epoch each.
( ./bin/run.js experiment headless --arch decoder --data ../shared/data/corpus/enwiki --budget 20m \
    --out runs/experiment-decoder > runs/decoder.log 2>&1 ) &
( ./bin/run.js tokenizer train --data ../shared/data/multilingual/udhr \
    --data ../shared/data/multilingual/tatoeba_laser_v1 --vocab-size 65536 --out runs/tok-multi > runs/xnli.log 2>&1 &&
  ./bin/run.js experiment headless --arch encoder --tokenizer runs/tok-multi --data ../shared/data/multilingual/udhr \
    --data ../shared/data/multilingual/tatoeba_laser_v1 --budget 10m --tasks xnli --xnli-protocol both \
    --languages en,fr,ru,zh --seeds 1 --epochs 1 --out runs/experiment-xnli >> runs/xnli.log 2>&1 ) &
wait
# Later, on its own:
./bin/run.js experiment headless --arch encoder --data ../shared/data/corpus/enwiki --budget 20m \
    --tasks rte,mrpc,stsb,cola --seeds 1,2,3 --epochs 1 --out runs/experiment-encoder > runs/encoder.log 2>&1
