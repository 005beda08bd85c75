// A checkpoint opened for fine-tuning a classifier (GLUE, XNLI): its configuration with a
// `numLabels`-output score head, the weights with that head initialised by the first seed, its
// tokenizer, the separator token, the pooling and the input length, each checked.
import { HlmError } from '../errors.js';
import { join } from 'node:path';
import { tokenizerFromJson, loadTokenizer, type Tokenizer } from '../data/tokenizer.js';
import { GPT2_VOCAB_SIZE, type ModelConfig } from '../model/config.js';
import { POOLINGS, type Pooling } from '../model/classifier.js';
import { loadCheckpoint, type LoadedCheckpoint } from '../model/checkpoint.js';

export interface FinetuneModel {
  config: ModelConfig;
  /** The checkpoint, its head initialised by the first seed. */
  first: LoadedCheckpoint;
  firstSeed: number;
  tokenizer: Tokenizer;
  /** Ends each sentence of an input: the model's end-of-text token. */
  sep: number;
  pooling: Pooling;
  maxSeqLen: number;
}

/**
 * `fileConfig` is the checkpoint's configuration as read; pooling and maxSeqLen default to what
 * `recorded` (a fine-tuned checkpoint's record) says, else mean (encoder) or last (decoder) and
 * min(128, n_positions).
 */
export async function openForFinetuning(
  model: string,
  fileConfig: ModelConfig,
  numLabels: number,
  o: { seeds: readonly number[]; pooling?: Pooling; maxSeqLen?: number },
  recorded: { pooling?: Pooling; max_seq_len?: number } = {},
): Promise<FinetuneModel> {
  const config = { ...fileConfig, num_labels: numLabels };
  const pooling = o.pooling ?? recorded.pooling ?? (config.causal ? 'last' : 'mean');
  if (!POOLINGS.includes(pooling)) throw new HlmError(`unknown pooling '${pooling}'`);
  const maxSeqLen = o.maxSeqLen ?? recorded.max_seq_len ?? Math.min(128, config.n_positions);
  if (!(Number.isInteger(maxSeqLen) && maxSeqLen >= 3 && maxSeqLen <= config.n_positions))
    throw new HlmError(`--max-seq-len must be in 3..${config.n_positions} (the model's n_positions), got ${maxSeqLen}`);
  if (!(o.seeds.length >= 1)) throw new HlmError('give at least one seed');
  const first = await loadCheckpoint(model, { config, optimizer: false, initMissing: { seed: o.seeds[0] } });
  const tokenizer: Tokenizer = first.tokenizerJson
    ? await tokenizerFromJson(first.tokenizerJson, join(first.dir, 'tokenizer.json'))
    : await loadTokenizer('gpt2');
  if (!first.tokenizerJson && config.vocab_size < GPT2_VOCAB_SIZE)
    throw new HlmError(`${model} has vocab_size ${config.vocab_size} and no tokenizer.json`);
  const sep = config.eos_token_id ?? tokenizer.eotId;
  return { config, first, firstSeed: o.seeds[0], tokenizer, sep, pooling, maxSeqLen };
}

/** The parameters a seed starts from: the checkpoint's, with the score head initialised by the seed. */
export async function seedParams(m: FinetuneModel, model: string, seed: number): Promise<Float32Array> {
  if (seed === m.firstSeed) return m.first.params;
  return (await loadCheckpoint(model, { config: m.config, optimizer: false, initMissing: { seed } })).params;
}
