#!/usr/bin/env bash
# Skip-gram word vectors for `hlm experiment whitening`, trained with Debian's fasttext on the
# WikiExtractor shards of ../shared/data/corpus/enwiki. The text is made first (once; kept as
# <out>/enwiki.txt): <doc …> and </doc> lines dropped, every other line lowercased with
# punctuation and symbols turned into spaces, as src/whiten/sts.ts tokenises STS sentences, so
# the vectors' words are the words STS looks up. fasttext then trains plain word2vec skip-gram
# (no character n-grams: -minn 0 -maxn 0) and writes <out>/sg.d<dim>.vec (word2vec text).
#
#   scripts/train-word-vectors.sh [--corpus dir] [--out dir] [--dim 100] [--epoch 5]
#                                 [--min-count 5] [--threads N]
# Needs perl and fasttext (apt-get install fasttext). Prints the .vec path last.
set -euo pipefail
corpus=../shared/data/corpus/enwiki
out=runs/word-vectors
dim=100
epoch=5
min_count=5
threads=$(nproc)
while [ $# -gt 0 ]; do
  case "$1" in
    --corpus) corpus=$2 ;;
    --out) out=$2 ;;
    --dim) dim=$2 ;;
    --epoch) epoch=$2 ;;
    --min-count) min_count=$2 ;;
    --threads) threads=$2 ;;
    *) echo "train-word-vectors.sh: unknown argument $1" >&2; exit 2 ;;
  esac
  shift 2
done
if ! command -v fasttext >/dev/null; then
  echo "train-word-vectors.sh: fasttext not found (apt-get install fasttext)" >&2
  exit 1
fi
shards=$(find "$corpus" -type f -name 'wiki_*' | sort)
[ -n "$shards" ] || { echo "train-word-vectors.sh: no wiki_* shards under $corpus" >&2; exit 1; }
mkdir -p "$out"
text=$out/enwiki.txt
if [ ! -s "$text" ]; then
  # shellcheck disable=SC2086
  cat $shards | perl -CSD -ne '
    next if /^<\/?doc[ >]/;
    $_ = lc; s/[\p{P}\p{S}]+/ /g; s/^\s+//; s/\s+$//; s/\s+/ /g;
    print "$_\n" if length;
  ' > "$text.tmp"
  mv "$text.tmp" "$text"
  echo "text: $(wc -l < "$text") lines, $(wc -w < "$text") words -> $text" >&2
fi
prefix=$out/sg.d$dim
start=$(date +%s)
fasttext skipgram -input "$text" -output "$prefix" -dim "$dim" -epoch "$epoch" -minCount "$min_count" \
  -thread "$threads" -minn 0 -maxn 0 -verbose 1 >&2
echo "fasttext: $(( $(date +%s) - start )) s" >&2
rm -f "$prefix.bin"
echo "$prefix.vec"
