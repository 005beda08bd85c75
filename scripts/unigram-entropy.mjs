// The baseline a language model must beat: the unigram entropy of a corpus (nats/token), and
// the cross-entropy of held-out text under the corpus's unigram distribution (add-one smoothed).
// usage: node scripts/unigram-entropy.mjs <train data...> [--eval <held-out text>]
import { loadTokenizer } from '../dist/src/data/tokenizer.js';
import { prepareData, readShard } from '../dist/src/data/shards.js';

const args = process.argv.slice(2);
const at = args.indexOf('--eval');
const train = at < 0 ? args : args.slice(0, at);
const evalPath = at < 0 ? undefined : args[at + 1];
const tok = await loadTokenizer('gpt2');
const counts = new Float64Array(tok.vocabSize);
let total = 0;
for (const s of (await prepareData(train, tok)).shards)
  for (const t of readShard(s)) {
    counts[t]++;
    total++;
  }
let h = 0;
for (const c of counts) if (c) h -= (c / total) * Math.log(c / total);
const out = { train_tokens: total, unigram_entropy_nats: h };
if (evalPath) {
  let ce = 0;
  let n = 0;
  const denom = total + tok.vocabSize;
  for (const s of (await prepareData([evalPath], tok)).shards)
    for (const t of readShard(s)) {
      ce -= Math.log((counts[t] + 1) / denom);
      n++;
    }
  Object.assign(out, { eval_tokens: n, unigram_cross_entropy_nats: ce / n });
}
console.log(JSON.stringify(out));
