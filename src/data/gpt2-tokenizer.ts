// GPT-2's byte-level BPE with GPT-2's exact ids (OpenAI's r50k_base ranks, as shipped by
// gpt-tokenizer), plus GPT-2's Hugging Face tokenizer.json rebuilt from those ranks so a
// checkpoint directory carries a tokenizer that `transformers` and `tokenizers` load unchanged.
import { encode as r50kEncode } from 'gpt-tokenizer/encoding/r50k_base';
import ranks from 'gpt-tokenizer/bpeRanks/r50k_base';
import { BYTE_ORDER, bytesToSymbols } from './byte-level.js';
import { MASK_TOKEN, type EncodeOptions, type Tokenizer } from './tokenizer-interface.js';
import { hfByteLevelJson, mergeText, withMaskToken } from './tokenizer-json.js';

export const GPT2_VOCAB_SIZE = 50257;
export const GPT2_EOT = '<|endoftext|>';
export const GPT2_EOT_ID = 50256;

const utf8 = new TextEncoder();
const ORDINARY = { disallowedSpecial: new Set<string>() }; // special-token text is plain text

/** Each id's bytes. */
let tokenBytes: Uint8Array[] | undefined;
function bytesOf(): Uint8Array[] {
  if (!tokenBytes) {
    tokenBytes = ranks.map((r) => (typeof r === 'string' ? utf8.encode(r) : Uint8Array.from(r)));
    tokenBytes.push(utf8.encode(GPT2_EOT));
  }
  return tokenBytes;
}

function encodeText(text: string, special: boolean): number[] {
  // gpt-tokenizer 4.0.0 only finds an allowed special token at the very start of the text (its
  // special-token regex is sticky), so the split on <|endoftext|> is done here, as tiktoken does.
  if (!special || !text.includes(GPT2_EOT)) return r50kEncode(text, ORDINARY);
  const out: number[] = [];
  text.split(GPT2_EOT).forEach((piece, i) => {
    if (i > 0) out.push(GPT2_EOT_ID);
    if (piece) for (const id of r50kEncode(piece, ORDINARY)) out.push(id);
  });
  return out;
}

const decoder = new TextDecoder('utf-8'); // not fatal: a split multi-byte character becomes U+FFFD, as in GPT-2

function decodeIds(ids: ArrayLike<number>): string {
  const table = bytesOf();
  let text = '';
  let parts: Uint8Array[] = [];
  let size = 0;
  const flush = () => {
    const all = new Uint8Array(size);
    let o = 0;
    for (const p of parts) {
      all.set(p, o);
      o += p.length;
    }
    text += decoder.decode(all);
    parts = [];
    size = 0;
  };
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id === GPT2_VOCAB_SIZE) {
      flush();
      text += MASK_TOKEN;
      continue;
    }
    const b = table[id];
    if (!Number.isInteger(id) || b === undefined)
      throw new RangeError(`gpt2: token id ${id} is outside the vocabulary (0..${GPT2_VOCAB_SIZE - 1})`);
    parts.push(b);
    size += b.length;
  }
  flush();
  return text;
}

let gpt2Json: { text: string; vocab: Map<string, number>; merges: string[] } | undefined;

/**
 * GPT-2's vocabulary and merges in Hugging Face form. Rank r >= 256 of r50k_base is the token
 * made by GPT-2's merge r - 256; its two halves are found by running BPE on the token's bytes
 * with only the ranks below r, which must end in exactly two pieces.
 */
function buildGpt2Json(): NonNullable<typeof gpt2Json> {
  const symbols = bytesOf().slice(0, GPT2_EOT_ID).map(bytesToSymbols);
  const rank = new Map<string, number>(symbols.map((s, i) => [s, i]));
  for (let i = 0; i < 256; i++) {
    if (symbols[i] !== bytesToSymbols([BYTE_ORDER[i]]))
      throw new Error(`r50k_base rank ${i} is not byte ${BYTE_ORDER[i]}`);
  }
  const merges: string[] = [];
  for (let r = 256; r < symbols.length; r++) {
    let parts = Array.from(symbols[r]);
    while (parts.length > 2) {
      let best = -1;
      let bestRank = r;
      for (let i = 0; i + 1 < parts.length; i++) {
        const k = rank.get(parts[i] + parts[i + 1]);
        if (k !== undefined && k < bestRank) {
          bestRank = k;
          best = i;
        }
      }
      if (best < 0) break;
      parts = [...parts.slice(0, best), parts[best] + parts[best + 1], ...parts.slice(best + 2)];
    }
    if (parts.length !== 2) throw new Error(`r50k_base rank ${r} (${symbols[r]}) does not split into one merge`);
    merges.push(`${parts[0]} ${parts[1]}`);
  }
  // A Map, then Object.fromEntries: a token such as "constructor" must not meet Object.prototype.
  const vocab = new Map<string, number>(symbols.map((s, i) => [s, i]));
  vocab.set(GPT2_EOT, GPT2_EOT_ID);
  const text = JSON.stringify(
    hfByteLevelJson(Object.fromEntries(vocab), merges, [{ id: GPT2_EOT_ID, content: GPT2_EOT }]),
  );
  return { text, vocab, merges };
}

function gpt2JsonParts(): NonNullable<typeof gpt2Json> {
  return (gpt2Json ??= buildGpt2Json());
}

/** True when a tokenizer.json maps every text to GPT-2's ids (MASK_TOKEN past the end allowed). */
export function isGpt2Json(json: string): boolean {
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- probed field by field below
  let doc: any;
  try {
    doc = JSON.parse(json);
  } catch {
    return false;
  }
  const model = doc?.model;
  if (model?.type !== 'BPE' || doc.normalizer != null || model.dropout != null || model.byte_fallback) return false;
  const pre = doc.pre_tokenizer;
  if (pre?.type !== 'ByteLevel' || pre.add_prefix_space || pre.use_regex === false) return false;
  if (!Array.isArray(model.merges) || model.merges.length !== 50000) return false;
  const added = (doc.added_tokens ?? []) as { id: number; content: string }[];
  if (
    !added.every(
      (t) => (t.id === GPT2_EOT_ID && t.content === GPT2_EOT) || (t.id === GPT2_VOCAB_SIZE && t.content === MASK_TOKEN),
    )
  )
    return false;
  if (!added.some((t) => t.id === GPT2_EOT_ID)) return false;
  const ref = gpt2JsonParts();
  if (model.vocab === null || typeof model.vocab !== 'object' || Array.isArray(model.vocab)) return false;
  const entries = Object.entries(model.vocab);
  if (entries.length !== GPT2_EOT_ID && entries.length !== GPT2_VOCAB_SIZE) return false;
  for (const [k, id] of entries) if (ref.vocab.get(k) !== id) return false;
  for (let i = 0; i < ref.merges.length; i++) if (mergeText(model.merges[i]) !== ref.merges[i]) return false;
  return true;
}

class Gpt2Tokenizer implements Tokenizer {
  readonly name = 'gpt2';
  readonly fingerprint = 'gpt2-r50k_base';
  readonly vocabSize = GPT2_VOCAB_SIZE;
  readonly eotId = GPT2_EOT_ID;
  readonly specialIds = [GPT2_EOT_ID];

  /** Synchronous encode, for callers on a hot path (corpus tokenisation). */
  encodeSync(text: string, options: EncodeOptions = {}): number[] {
    return encodeText(text, options.special ?? false);
  }
  async encode(text: string, options: EncodeOptions = {}): Promise<number[]> {
    return this.encodeSync(text, options);
  }
  async encodeBatch(texts: string[], options: EncodeOptions = {}): Promise<number[][]> {
    return texts.map((t) => this.encodeSync(t, options));
  }
  decodeSync(ids: ArrayLike<number>): string {
    return decodeIds(ids);
  }
  async decode(ids: ArrayLike<number>): Promise<string> {
    return decodeIds(ids);
  }
  toJSON(options: { withMask?: boolean } = {}): string {
    const { text } = gpt2JsonParts();
    return options.withMask ? withMaskToken(text, GPT2_VOCAB_SIZE) : text;
  }
}

let instance: Gpt2Tokenizer | undefined;

/** The GPT-2 tokenizer (one shared instance). */
export function gpt2Tokenizer(): Gpt2Tokenizer {
  return (instance ??= new Gpt2Tokenizer());
}
export type { Gpt2Tokenizer };
