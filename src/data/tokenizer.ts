// What the rest of hlm sees of a tokenizer, and how one is chosen: GPT-2's own (the default,
// exact GPT-2 ids) or any Hugging Face tokenizer.json. Encoding is asynchronous because the
// Hugging Face binding only offers promise-returning encode/decode; GPT-2's is synchronous
// underneath and resolves at once.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { HlmError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import type { Tokenizer } from './tokenizer-interface.js';

export { MASK_TOKEN, type EncodeOptions, type Tokenizer } from './tokenizer-interface.js';

/** Masked-LM convention: the mask id is the first id past the base vocabulary (GPT-2: 50257). */
export function maskId(tokenizer: Pick<Tokenizer, 'vocabSize'>): number {
  return tokenizer.vocabSize;
}

/** Round a vocabulary up to a multiple (GPU-friendly embedding rows): paddedVocab(50258) = 50304. */
export function paddedVocab(n: number, multiple = 64): number {
  if (!(Number.isInteger(n) && n > 0 && Number.isInteger(multiple) && multiple > 0)) {
    throw new RangeError(`paddedVocab(${n}, ${multiple}): both must be positive integers`);
  }
  return Math.ceil(n / multiple) * multiple;
}

/** Writes `<dir>/tokenizer.json` atomically. */
export function saveTokenizer(tokenizer: Tokenizer, dir: string, options: { withMask?: boolean } = {}): string {
  const path = join(dir, 'tokenizer.json');
  writeFileAtomic(path, tokenizer.toJSON(options), 'tokenizer');
  return path;
}

/**
 * 'gpt2' (also 'gpt-2', 'r50k_base'), a tokenizer.json file, or a directory holding one.
 * A tokenizer.json that is GPT-2's own loads as the fast built-in GPT-2 tokenizer.
 */
export async function loadTokenizer(spec: string): Promise<Tokenizer> {
  if (['gpt2', 'gpt-2', 'r50k_base'].includes(spec.toLowerCase()))
    return (await import('./gpt2-tokenizer.js')).gpt2Tokenizer();
  if (!existsSync(spec))
    throw new HlmError(
      `tokenizer ${spec}: no such file or directory (expected 'gpt2', a tokenizer.json, or a directory holding one)`,
    );
  const file = statSync(spec).isDirectory() ? join(spec, 'tokenizer.json') : spec;
  if (!existsSync(file)) throw new HlmError(`tokenizer ${spec}: directory has no tokenizer.json`);
  return tokenizerFromJson(readFileSync(file, 'utf8'), file);
}

/** A tokenizer.json's text (source names it in error messages). */
export async function tokenizerFromJson(json: string, source = 'tokenizer.json'): Promise<Tokenizer> {
  const gpt2 = await import('./gpt2-tokenizer.js');
  if (gpt2.isGpt2Json(json)) return gpt2.gpt2Tokenizer();
  return (await import('./hf-tokenizer.js')).HfTokenizer.fromJson(json, source);
}

/** GPT-2's vocabulary sizes a checkpoint may declare: plain, plus the mask token, and both padded to 64. */
const GPT2_VOCAB_SIZES = [50257, 50258, paddedVocab(50258)];

/**
 * The tokenizer of a checkpoint directory: its tokenizer.json if present, else GPT-2 when
 * vocab_size is GPT-2's (as Hugging Face GPT-2 checkpoints expect); anything else is refused.
 */
export async function tokenizerForCheckpoint(dir: string, vocabSize: number): Promise<Tokenizer> {
  const file = join(dir, 'tokenizer.json');
  let tokenizer: Tokenizer;
  if (existsSync(file)) tokenizer = await loadTokenizer(file);
  else if (GPT2_VOCAB_SIZES.includes(vocabSize)) tokenizer = await loadTokenizer('gpt2');
  else {
    throw new HlmError(
      `checkpoint ${dir} has vocab_size ${vocabSize} and no tokenizer.json: only GPT-2's vocabulary ` +
        `(${GPT2_VOCAB_SIZES.join(', ')}) can be assumed; put the tokenizer.json it was trained with beside ` +
        `config.json`,
    );
  }
  if (tokenizer.vocabSize > vocabSize) {
    throw new HlmError(
      `checkpoint ${dir}: tokenizer ${tokenizer.name} has ${tokenizer.vocabSize} tokens but the model only ` +
        `${vocabSize}`,
    );
  }
  return tokenizer;
}
