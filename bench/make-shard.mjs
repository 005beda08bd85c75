#!/usr/bin/env node
// Tokenises text corpora (files or folders, the formats `pretrain --data` reads) with GPT-2's tokenizer into one
// llm.c token shard, for a machine that should not spend its time tokenising (bench/gpu-prep.sh makes the lent
// GPU's held-out sets this way). Run after `npm run build`:
//   node bench/make-shard.mjs <out.bin> <text file or folder>...
// It goes through pretrain's own cache code (each document after an end-of-text token) in a scratch folder and
// moves the one shard to <out.bin>, so the file is what `pretrain --data` would have read.
import { mkdtempSync, renameSync, rmSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { gpt2Tokenizer } from '../dist/src/data/gpt2-tokenizer.js';
import { tokenizeCorpus } from '../dist/src/data/shards.js';

const [out, ...inputs] = process.argv.slice(2);
if (!out || !inputs.length) {
  console.error('usage: node bench/make-shard.mjs <out.bin> <text file or folder>...');
  process.exit(2);
}
// The scratch folder sits beside the output, so the final rename never crosses file systems.
const scratch = mkdtempSync(join(dirname(resolve(out)), '.make-shard-'));
try {
  const r = await tokenizeCorpus(inputs, gpt2Tokenizer(), { cacheDir: scratch, shardTokens: 0x7fffffff });
  if (!r.documents) throw new Error(`no documents in ${inputs.join(', ')}`);
  if (r.shards.length !== 1) throw new Error(`expected one shard, got ${r.shards.length}`);
  renameSync(r.shards[0], out);
  console.log(`${out}: ${r.tokens} tokens from ${r.documents} documents`);
} catch (err) {
  console.error(`make-shard: ${err.message}`);
  process.exitCode = 1;
} finally {
  rmSync(scratch, { recursive: true, force: true });
}
