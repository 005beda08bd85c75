// Tokens as OpenAI's logprobs object shows them. `tokens[i]` is the token's own text, or, when
// its bytes are not whole UTF-8 characters (byte-level BPE splits characters), OpenAI's
// "bytes:\xNN..." spelling. `text_offset[i]` is where the token starts in the choice's text
// (prompt + completion), in UTF-16 code units as JavaScript and Python count them; a token that
// starts inside a split character starts where that character does.
//
// For a byte-level BPE tokenizer (GPT-2's, and hlm's trained ones) each id's bytes come from
// the vocabulary of its tokenizer.json, read once; for any other tokenizer, from decoding the
// id alone.
import type { Tokenizer } from '../data/tokenizer.js';
import { symbolsToBytes } from '../data/byte-level.js';

const utf8 = new TextEncoder();
const strict = new TextDecoder('utf-8', { fatal: true });

function byteLevelTable(tokenizer: Tokenizer): Map<number, Uint8Array> | undefined {
  let doc: {
    model?: { type?: string; vocab?: Record<string, number> };
    decoder?: { type?: string };
    added_tokens?: { id: number; content: string }[];
  };
  try {
    doc = JSON.parse(tokenizer.toJSON());
  } catch {
    return undefined;
  }
  if (doc.model?.type !== 'BPE' || doc.decoder?.type !== 'ByteLevel' || !doc.model.vocab) return undefined;
  const table = new Map<number, Uint8Array>();
  for (const [symbols, id] of Object.entries(doc.model.vocab)) {
    const bytes = symbolsToBytes(symbols);
    if (bytes) table.set(id, bytes);
  }
  for (const t of doc.added_tokens ?? []) table.set(t.id, utf8.encode(t.content));
  return table;
}

export class TokenTexts {
  private readonly cache = new Map<number, Uint8Array>();

  private constructor(
    private readonly tokenizer: Tokenizer,
    private readonly table: Map<number, Uint8Array> | undefined,
  ) {}

  static create(tokenizer: Tokenizer): TokenTexts {
    return new TokenTexts(tokenizer, byteLevelTable(tokenizer));
  }

  /** The token's bytes (an id the tokenizer cannot decode shows as "<id N>"). */
  async bytes(id: number): Promise<Uint8Array> {
    const known = this.table?.get(id) ?? this.cache.get(id);
    if (known) return known;
    let text: string;
    try {
      text = await this.tokenizer.decode([id]);
    } catch {
      text = `<id ${id}>`;
    }
    const b = utf8.encode(text);
    this.cache.set(id, b);
    return b;
  }

  /** OpenAI's token string: its text, or "bytes:\xNN..." when its bytes are not whole characters. */
  async label(id: number): Promise<string> {
    const b = await this.bytes(id);
    try {
      return strict.decode(b);
    } catch {
      return 'bytes:' + Array.from(b, (x) => `\\x${x.toString(16).padStart(2, '0')}`).join('');
    }
  }

  /**
   * Where each token starts in the text the ids decode to, plus `base` (the length of the text before them): the
   * length of the whole characters decoded before it.
   */
  async offsets(ids: readonly number[], base = 0): Promise<number[]> {
    const dec = new TextDecoder('utf-8');
    let at = base;
    const out: number[] = [];
    for (const id of ids) {
      out.push(at);
      at += dec.decode(await this.bytes(id), { stream: true }).length;
    }
    return out;
  }
}

/** log-softmax of a row of logits, in float64: the log-sum-exp. */
export function logSumExp(logits: ArrayLike<number>, n = logits.length): number {
  let max = -Infinity;
  for (let i = 0; i < n; i++) if (logits[i] > max) max = logits[i];
  let s = 0;
  for (let i = 0; i < n; i++) s += Math.exp(logits[i] - max);
  return max + Math.log(s);
}

/** The k largest logits' ids, largest first (ties: lower id first). */
export function topIds(logits: ArrayLike<number>, k: number, n = logits.length): number[] {
  const best: number[] = [];
  for (let i = 0; i < n; i++) {
    const x = logits[i];
    if (best.length === k && !(x > logits[best[k - 1]])) continue;
    let j = best.length === k ? k - 1 : best.length;
    while (j > 0 && x > logits[best[j - 1]]) j--;
    best.splice(j, 0, i);
    if (best.length > k) best.pop();
  }
  return best;
}
