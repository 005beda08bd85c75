// Hugging Face tokenizer.json pieces shared by the GPT-2 and trained tokenizers.
import { MASK_TOKEN } from './tokenizer-interface.js';

/** A byte-level BPE tokenizer.json laid out as Hugging Face writes GPT-2's. */
export function hfByteLevelJson(
  vocab: Record<string, number>,
  merges: string[],
  added: { id: number; content: string }[],
): object {
  return {
    version: '1.0',
    truncation: null,
    padding: null,
    added_tokens: added.map(({ id, content }) => ({
      id,
      content,
      single_word: false,
      lstrip: false,
      rstrip: false,
      normalized: true,
      special: true,
    })),
    normalizer: null,
    pre_tokenizer: { type: 'ByteLevel', add_prefix_space: false, trim_offsets: true, use_regex: true },
    post_processor: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: false, use_regex: true },
    decoder: { type: 'ByteLevel', add_prefix_space: true, trim_offsets: true, use_regex: true },
    model: {
      type: 'BPE',
      dropout: null,
      unk_token: null,
      continuing_subword_prefix: '',
      end_of_word_suffix: '',
      fuse_unk: false,
      byte_fallback: false,
      vocab,
      merges,
    },
  };
}

/** Adds MASK_TOKEN as a special added token at `id` to a tokenizer.json text. */
export function withMaskToken(json: string, id: number): string {
  const doc = JSON.parse(json) as { added_tokens?: object[] };
  doc.added_tokens = [
    ...(doc.added_tokens ?? []),
    { id, content: MASK_TOKEN, single_word: false, lstrip: false, rstrip: false, normalized: false, special: true },
  ];
  return JSON.stringify(doc);
}

/** Merges as Hugging Face writes them: "a b" (older) or ["a", "b"] (tokenizers >= 0.20). */
export function mergeText(m: unknown): string | undefined {
  if (typeof m === 'string') return m;
  if (Array.isArray(m) && m.length === 2 && typeof m[0] === 'string' && typeof m[1] === 'string')
    return `${m[0]} ${m[1]}`;
  return undefined;
}
