// What tests need to train in a fraction of a second: a slice of the bundled corpus, the one-layer decoder and
// encoder configurations with their initial checkpoints, and for the CLI tests of a run's life a 300-token BPE
// tokenizer trained on the slice and the flags of a one-layer model.
import { tmpdir } from 'node:os';
import { saveCheckpoint } from '../../src/model/checkpoint.js';
import { initParams } from '../../src/model/params.js';
import { preset, type ModelConfig } from '../../src/model/config.js';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { defaultCorpusPath } from '../../src/data/corpus.js';
import { hlm } from './cli.js';

export interface TinyRun {
  corpus: string;
  /** A directory holding tokenizer.json (for --tokenizer; a fresh run only). */
  tokenizer: string;
  /** --data and the model and batch flags (no --steps, --out or --log-every). */
  model: string[];
}

/** The first `chars` characters of the bundled corpus, markup removed, as `<dir>/corpus.txt`. */
/** A very small decoder with GPT-2's vocabulary, and the encoder beside it (a [MASK] id past the vocabulary). */
export const EOT = 50256;
export const TINY_DECODER: ModelConfig = {
  ...preset('tiny'),
  n_layer: 1,
  n_embd: 16,
  n_head: 2,
  n_positions: 32,
  eos_token_id: EOT,
};
export const TINY_ENCODER: ModelConfig = {
  ...TINY_DECODER,
  causal: false,
  vocab_size: EOT + 2,
  mask_token_id: EOT + 1,
};

/**
 * A test directory for tiny training runs: HLM_CACHE_DIR inside it, a 30,000-character corpus, and the tiny decoder's
 * and encoder's initial checkpoints in init/ and init-enc/ (seed 7).
 */
export async function tinyTrainingDir(name: string): Promise<{ dir: string; corpus: string }> {
  const dir = mkdtempSync(join(tmpdir(), `hlm-${name}-`));
  process.env.HLM_CACHE_DIR = join(dir, 'cache');
  const corpus = writeCorpus(dir, 30_000);
  await saveCheckpoint(join(dir, 'init'), { config: TINY_DECODER, params: initParams(TINY_DECODER, 7) });
  await saveCheckpoint(join(dir, 'init-enc'), { config: TINY_ENCODER, params: initParams(TINY_ENCODER, 7) });
  return { dir, corpus };
}

/**
 * The single-step contract's settings (DESIGN.md): one plain SGD step from --init, sequential data, no clip, decay,
 * warm-up or schedule; a test adds its data, out and shape.
 */
export const SINGLE_STEP = {
  arch: 'decoder',
  objective: 'ce',
  preset: 'tiny',
  set: [] as string[],
  resume: false,
  steps: 1,
  lr: 0.5,
  optimizer: 'sgd',
  weightDecay: 0,
  warmup: 0,
  schedule: 'constant',
  gradClip: 0,
  order: 'sequential',
  seed: 3,
  evalEvery: 0,
  evalBatches: 1,
  saveEvery: 0,
  logEvery: 10,
} as const;

export function writeCorpus(dir: string, chars = 60_000): string {
  const corpus = join(dir, 'corpus.txt');
  writeFileSync(
    corpus,
    readFileSync(defaultCorpusPath(), 'utf8')
      .slice(0, chars)
      .replace(/<[^>]+>/g, ''),
  );
  return corpus;
}

export function tinyRun(dir: string, env: Record<string, string>): TinyRun {
  const corpus = writeCorpus(dir);
  const tokenizer = join(dir, 'tok');
  const t = hlm(['tokenizer', 'train', '--data', corpus, '--out', tokenizer, '--vocab-size', '300'], env);
  if (t.status !== 0) throw new Error(t.stderr);
  const model = [
    ...['--data', corpus, '--set', 'n_layer=1', '--set', 'n_embd=16', '--set', 'n_head=2', '--set', 'n_positions=16'],
    ...['--batch-size', '2', '--seq-len', '16', '--eval-every', '0'],
  ];
  return { corpus, tokenizer, model };
}
