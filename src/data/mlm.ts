// Masked-LM batches for the encoder (BERT's recipe): of a batch's B×T positions a fixed number
// K = max(1, round(rate·B·T)) is selected, never special tokens while others exist (a fixed K
// keeps the CWT head's K×K scores one size); of those, 80% become the mask id, 10% a random
// token (uniform over the base vocabulary, special ids excluded) and 10% stay as they are.
// Targets hold the original token at selected positions and -1 (ignore) elsewhere.
// Everything is a pure function of (tokens, seed, step).
import { streamRng } from './random.js';

export interface MlmOptions {
  seed: number;
  /** training step (or batch index): a different draw for each */
  step: number;
  /** the mask id: the first id past the base vocabulary (maskId(tokenizer)) */
  maskId: number;
  /** base vocabulary size: random replacements are drawn from [0, vocabSize) */
  vocabSize: number;
  /** ids never selected (while other positions exist) nor drawn as random replacements */
  specialIds?: readonly number[];
  /** fraction of positions selected (0.15) */
  rate?: number;
  /** of the selected: fraction masked (0.8) and fraction replaced at random (0.1); the rest kept */
  maskFraction?: number;
  randomFraction?: number;
}

export interface MlmBatch {
  /** the tokens with the selected positions masked / replaced / kept */
  inputs: Int32Array;
  /** original token at selected positions, -1 elsewhere */
  targets: Int32Array;
  /** the selected positions, ascending */
  positions: Int32Array;
}

export const IGNORE = -1;

/** How many of n positions a batch selects. */
export function mlmCount(n: number, rate = 0.15): number {
  return Math.min(n, Math.max(1, Math.round(rate * n)));
}

export function maskTokens(tokens: ArrayLike<number>, options: MlmOptions): MlmBatch {
  const {
    seed,
    step,
    maskId,
    vocabSize,
    specialIds = [],
    rate = 0.15,
    maskFraction = 0.8,
    randomFraction = 0.1,
  } = options;
  const n = tokens.length;
  if (n === 0) throw new RangeError('masked-LM batch of no tokens');
  if (!(rate > 0 && rate <= 1)) throw new RangeError(`mask rate ${rate} must be in (0, 1]`);
  if (!(maskFraction >= 0 && randomFraction >= 0 && maskFraction + randomFraction <= 1)) {
    throw new RangeError(
      `mask fraction ${maskFraction} and random fraction ${randomFraction} must be >= 0 and sum to <= 1`,
    );
  }
  const special = new Set(specialIds);
  if (special.size >= vocabSize)
    throw new RangeError(`no ordinary token to draw: ${special.size} special ids in a vocabulary of ${vocabSize}`);
  const rng = streamRng(seed, step, 0x6d6c6d); // 'mlm'

  let candidates: number[] = [];
  for (let i = 0; i < n; i++) if (!special.has(tokens[i])) candidates.push(i);
  if (candidates.length === 0) candidates = Array.from({ length: n }, (_, i) => i);
  const k = Math.min(candidates.length, mlmCount(n, rate));
  // partial Fisher-Yates: the first k of a seeded shuffle
  for (let i = 0; i < k; i++) {
    const j = i + Math.floor(rng() * (candidates.length - i));
    const t = candidates[i];
    candidates[i] = candidates[j];
    candidates[j] = t;
  }
  const positions = Int32Array.from(candidates.slice(0, k)).sort();

  const inputs = Int32Array.from(tokens);
  const targets = new Int32Array(n).fill(IGNORE);
  for (const p of positions) {
    targets[p] = tokens[p];
    const u = rng();
    if (u < maskFraction) inputs[p] = maskId;
    else if (u < maskFraction + randomFraction) {
      let t: number;
      do t = Math.floor(rng() * vocabSize);
      while (special.has(t));
      inputs[p] = t;
    }
  }
  return { inputs, targets, positions };
}
