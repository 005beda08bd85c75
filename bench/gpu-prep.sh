#!/usr/bin/env bash
# Prepares a lent-GPU call of bench/gpu-run.sh, here, where npm and ../shared/data are, so the lease is spent on
# measuring. Run from the project root after `npm run build`:
#   bash bench/gpu-prep.sh
# 1. Checks that the build is there and newer than src/.
# 2. Packs Node.js, the Vulkan loader and the production node_modules into .gpu/ (../shared/gpu/pack.sh, env PACK),
#    unless .gpu/ is newer than package-lock.json, then drops the `tokenizers` binaries of other platforms from
#    the node_modules archive: pack.sh keeps them, and with them the call was over the device tool's 64 MiB.
# 3. Tokenises the pretrain and sweep stages' text into .gpudata/ (enwiki's first 12 files to train on, WikiText-2
#    valid and enwiki's wiki_63 held out, from ../shared/data, env HLM_DATA).
# 4. Adds up what the call would send (tracked and untracked-not-ignored files, and the carried .gpu, dist/src and
#    .gpudata) and fails, naming the parts, when that is over the limit (env TRAVEL_LIMIT, bytes; 64 MiB).
# Last it prints the call to make.
set -euo pipefail
[[ -f package.json && -d .git ]] || { echo "gpu-prep.sh: run it from the project root" >&2; exit 2; }
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
pack=${PACK:-../shared/gpu/pack.sh}
data=${HLM_DATA:-../shared/data}
limit=${TRAVEL_LIMIT:-67108864}
carry=(.gpu dist/src .gpudata)
die() { echo "gpu-prep.sh: $*" >&2; exit 1; }
exclude() { grep -qx "$1" .git/info/exclude 2>/dev/null || echo "$1" >> .git/info/exclude; }

# 1. The build.
built=dist/src/commands/bench.js
[[ -f $built ]] || die "no build ($built): run npm run build first"
newer=$([[ -d src ]] && find src -newer "$built" -type f -print -quit || true)
[[ -z $newer ]] || die "the build is older than $newer: run npm run build first"

# 2. .gpu/, slimmed.
if [[ ! -f .gpu/boot.sh || ! -f .gpu/node_modules.tar.xz || package-lock.json -nt .gpu/node_modules.tar.xz ]]; then
  [[ -f $pack ]] || die "$pack: no such file (set PACK to pack.sh)"
  bash "$pack"
fi
binaries='^node_modules/tokenizers/tokenizers\.[^/]*\.node$'
mapfile -t other < <(tar -tJf .gpu/node_modules.tar.xz | grep -E "$binaries" | grep -v linux-x64-gnu || true)
if ((${#other[@]})); then
  tar=.gpu/node_modules.tar
  xz -dc .gpu/node_modules.tar.xz > "$tar"
  tar --delete -f "$tar" "${other[@]}"
  xz -T0 -6 -c "$tar" > "$tar.xz.new" && mv "$tar.xz.new" .gpu/node_modules.tar.xz
  rm -f "$tar"
  echo "gpu-prep.sh: dropped ${#other[@]} other platforms' tokenizers binaries from .gpu/node_modules.tar.xz"
fi

# 3. The token shards: training text and the held-out sets.
mkdir -p .gpudata
exclude /.gpudata/
shard() {
  local out=.gpudata/$1 srcs=() src
  shift
  for src in "$@"; do
    [[ -e $data/$src ]] || die "$data/$src: no such file (set HLM_DATA to the shared data folder)"
    srcs+=("$data/$src")
  done
  [[ -f $out && -z $(find "${srcs[@]}" -newer "$out" -print -quit) ]] && return
  node "$here/make-shard.mjs" "$out" "${srcs[@]}"
}
# The pretrain stage's training text: enwiki's first 12 files (~2.4M tokens, a small-preset run of 300 steps).
shard enwiki12.bin $(printf 'corpus/enwiki/wiki_%02d ' $(seq 0 11))
shard wikitext-valid.bin corpus/wikitext-2/valid.txt
shard wiki63.bin corpus/enwiki/wiki_63

# 4. What travels.
sum() { awk '{ s += $1 } END { print s + 0 }'; }
tracked=$(git ls-files -z | xargs -0 -r stat -c %s 2>/dev/null | sum || true)
untracked=$(git ls-files -z --others --exclude-standard | xargs -0 -r stat -c %s | sum)
parts="tracked files $tracked, untracked $untracked"
total=$((tracked + untracked))
for c in "${carry[@]}"; do
  n=$(find "$c" -type f -printf '%s\n' | sum)
  parts="$parts, $c $n"
  total=$((total + n))
done
mib() { awk -v b="$1" 'BEGIN { printf "%.1f MiB", b / 1048576 }'; }
if ((total > limit)); then
  die "the call would send $(mib "$total"), over the device tool's $(mib "$limit") (bytes: $parts)"
fi
echo "gpu-prep.sh: the call sends $(mib "$total") of $(mib "$limit") (bytes: $parts)"
printf 'gpu-prep.sh: run with command "source .gpu/boot.sh && bash bench/gpu-run.sh", carry %s,' \
  "$(printf '["%s", "%s", "%s"]' "${carry[@]}")"
echo ' timeout_s 600 (the script stops itself before its DEADLINE, 540 s)'
