// Other inputs of `hlm whiten`: an hlm checkpoint's token embeddings (transformer.wte.weight, one row per
// token id, the words being the ids as decimal strings "0", "1", ...), token frequencies counted from llm.c
// token shards or from a text corpus encoded with the checkpoint's tokenizer, and word frequencies
// counted from a text corpus with the STS tokenisation.
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HlmError } from '../errors.js';
import { CONFIG_FILE, MODEL_FILE, loadCheckpoint } from '../model/checkpoint.js';
import { listCorpusFiles, readDocuments, SHARD_MAGIC } from '../data/corpus.js';
import { readShard } from '../data/shards.js';
import { tokenizerForCheckpoint } from '../data/tokenizer.js';
import { readHead } from '../util/read-stream.js';
import type { Embeddings } from './formats.js';
import { tokenize } from './sts.js';

/** A directory with config.json is read as an hlm checkpoint. */
export function isCheckpointDir(path: string): boolean {
  try {
    return statSync(path).isDirectory() && existsSync(join(path, CONFIG_FILE));
  } catch {
    return false;
  }
}

/**
 * The token embeddings [V, d] of a checkpoint; words are the token ids as decimal strings. Output format word2vec text.
 */
export async function readCheckpointEmbeddings(
  dir: string,
): Promise<Embeddings & { vocabSize: number; rows: number; dir: string }> {
  if (!existsSync(join(dir, MODEL_FILE)))
    throw new HlmError(`${dir}: a checkpoint directory needs ${CONFIG_FILE} and ${MODEL_FILE}`);
  const ck = await loadCheckpoint(dir, { optimizer: false });
  const wte = ck.layout.byName.get('transformer.wte.weight');
  if (!wte) throw new HlmError(`${dir}: the checkpoint has no transformer.wte.weight`);
  const V = ck.config.vocab_size;
  const d = ck.config.n_embd;
  if (wte.size !== V * d)
    throw new HlmError(`${dir}: transformer.wte.weight has ${wte.size} values, expected ${V} × ${d}`);
  const vectors = ck.params.slice(wte.offset, wte.offset + wte.size);
  const words = Array.from({ length: V }, (_, i) => String(i));
  return { words, dim: d, vectors, format: 'word2vec', vocabSize: V, rows: V, dir: ck.dir };
}

/** True when `path` is a directory or a file that starts with the llm.c shard magic (or ends in .bin). */
export function looksLikeShards(path: string): boolean {
  let st;
  try {
    st = statSync(path);
  } catch {
    return false;
  }
  if (st.isDirectory()) return true;
  if (/\.bin$/i.test(path)) return true;
  const head = readHead(path, 4, '--frequencies');
  return head.length === 4 && head.readInt32LE(0) === SHARD_MAGIC;
}

/** The shard files of a path: the file itself, or a directory's shards (sorted, recursive). */
export function shardFiles(path: string): string[] {
  if (!existsSync(path)) throw new HlmError(`--frequencies ${path}: no such file or directory`);
  if (!statSync(path).isDirectory()) return [path];
  const files = listCorpusFiles([path], '--frequencies')
    .filter((f) => f.format === 'shard')
    .map((f) => f.path);
  if (!files.length) throw new HlmError(`--frequencies ${path}: no llm.c token shards (.bin) in this directory`);
  return files;
}

/**
 * Occurrences of each token id over the shards of `path`, keyed by the id as a decimal string; an id ≥ vocabSize is an
 * error naming the shard.
 */
export function countShardTokens(path: string, vocabSize: number): Map<string, number> {
  const counts = new Float64Array(vocabSize);
  let total = 0;
  for (const file of shardFiles(path)) {
    const tokens = readShard(file);
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i];
      if (t >= vocabSize)
        throw new HlmError(
          `token shard ${file}: token id ${t} at index ${i} is outside the checkpoint's vocabulary of ${vocabSize}`,
        );
      counts[t]++;
    }
    total += tokens.length;
  }
  if (!total) throw new HlmError(`--frequencies ${path}: the token shards hold no tokens`);
  const out = new Map<string, number>();
  for (let t = 0; t < vocabSize; t++) if (counts[t] > 0) out.set(String(t), counts[t]);
  return out;
}

/**
 * Word counts over a text corpus (files or directories, as hlm's --data; plain or gzip): lowercased, punctuation and
 * symbols removed (sts.tokenize).
 */
export async function countCorpusWords(corpus: string): Promise<Map<string, number>> {
  if (!existsSync(corpus)) throw new HlmError(`--count-from ${corpus}: no such file or directory`);
  const counts = new Map<string, number>();
  for await (const doc of readDocuments(listCorpusFiles([corpus], '--count-from'))) {
    for (const w of tokenize(doc)) counts.set(w, (counts.get(w) ?? 0) + 1);
  }
  if (!counts.size) throw new HlmError(`--count-from ${corpus}: no words`);
  return counts;
}

/** Documents encoded per call of the tokenizer. */
const BATCH_DOCUMENTS = 256;

/**
 * Token-id counts over a text corpus encoded with a checkpoint's tokenizer (its tokenizer.json, or GPT-2's for
 * GPT-2's vocabulary sizes; tokenizerForCheckpoint refuses anything else), keyed by the id as a decimal string, as
 * the checkpoint's rows are.
 */
export async function countCorpusTokens(corpus: string, checkpoint: string, vocabSize: number) {
  if (!existsSync(corpus)) throw new HlmError(`--count-from ${corpus}: no such file or directory`);
  const tokenizer = await tokenizerForCheckpoint(checkpoint, vocabSize).catch((err: unknown) => {
    if (!(err instanceof HlmError)) throw err;
    throw new HlmError(
      `--count-from ${corpus}: a checkpoint's rows are token ids, counted by encoding the corpus with its ` +
        `tokenizer, which is missing: ${err.message}`,
    );
  });
  const counts = new Float64Array(vocabSize);
  let total = 0;
  let batch: string[] = [];
  const flush = async () => {
    for (const ids of await tokenizer.encodeBatch(batch)) {
      for (const t of ids) counts[t]++;
      total += ids.length;
    }
    batch = [];
  };
  for await (const doc of readDocuments(listCorpusFiles([corpus], '--count-from'))) {
    batch.push(doc);
    if (batch.length >= BATCH_DOCUMENTS) await flush();
  }
  await flush();
  if (!total) throw new HlmError(`--count-from ${corpus}: no tokens`);
  const out = new Map<string, number>();
  for (let t = 0; t < vocabSize; t++) if (counts[t] > 0) out.set(String(t), counts[t]);
  return { counts: out, tokenizer: tokenizer.name };
}
