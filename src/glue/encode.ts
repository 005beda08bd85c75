// GLUE examples as model inputs: `a <sep>` for one sentence, `a <sep> b <sep>` for a pair, the
// separator being the tokenizer's end-of-text token (GPT-2 has no other special token). Inputs
// longer than max-seq-len lose tokens from the end of the longer sentence, one at a time
// (Hugging Face's "longest_first"), so both sentences keep as much as they can.
import { HlmError } from '../errors.js';
import type { Tokenizer } from '../data/tokenizer.js';

export interface GlueInput {
  a: string;
  b?: string;
}

export interface EncodedInputs {
  tokens: number[][];
  /** How many inputs were truncated. */
  truncated: number;
}

/** Join and truncate already-tokenized sentences. */
export function joinPair(
  a: readonly number[],
  b: readonly number[] | undefined,
  sep: number,
  maxLen: number,
): { tokens: number[]; truncated: boolean } {
  const specials = b ? 2 : 1;
  if (maxLen < specials + 1)
    throw new HlmError(
      `max-seq-len ${maxLen} is too short: an input needs ${specials} separator(s) and at least one token`,
    );
  let la = a.length;
  let lb = b?.length ?? 0;
  const budget = maxLen - specials;
  const truncated = la + lb > budget;
  while (la + lb > budget) {
    if (la >= lb) la--;
    else lb--;
  }
  const tokens = [...a.slice(0, la), sep];
  if (b) tokens.push(...b.slice(0, lb), sep);
  return { tokens, truncated };
}

export async function encodeGlue(
  tokenizer: Tokenizer,
  inputs: readonly GlueInput[],
  sep: number,
  maxLen: number,
): Promise<EncodedInputs> {
  const a = await tokenizer.encodeBatch(inputs.map((x) => x.a));
  const pairs = inputs.some((x) => x.b !== undefined);
  const b = pairs ? await tokenizer.encodeBatch(inputs.map((x) => x.b ?? '')) : [];
  let truncated = 0;
  const tokens = inputs.map((x, i) => {
    const j = joinPair(a[i], pairs ? b[i] : undefined, sep, maxLen);
    if (j.truncated) truncated++;
    return j.tokens;
  });
  return { tokens, truncated };
}
