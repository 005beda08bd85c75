// The tokenizer interface, apart from the loaders in tokenizer.ts so that the implementations
// (gpt2-tokenizer.ts, hf-tokenizer.ts) depend on it without depending on the module that loads them.
export interface EncodeOptions {
  /**
   * true: the end-of-text token's text ("<|endoftext|>") in the input becomes its id.
   * false (default): it is ordinary text for GPT-2, as in GPT-2's training data.
   * Hugging Face tokenizers always match their added tokens in text (the binding has no
   * switch for it), so for them this option changes nothing.
   */
  special?: boolean;
}

export interface Tokenizer {
  /** Short label for logs and config: 'gpt2', or 'hf-bpe-8000' for a tokenizer.json. */
  readonly name: string;
  /** Changes whenever the ids some text maps to could change; part of token-cache keys. */
  readonly fingerprint: string;
  /** Base vocabulary: every id the tokenizer emits is below it (the mask id equals it). */
  readonly vocabSize: number;
  /** End-of-text id, the document separator in token shards. */
  readonly eotId: number;
  /** Ids that are not text (end-of-text, padding, ...); masked-LM never draws them as random tokens. */
  readonly specialIds: readonly number[];
  encode(text: string, options?: EncodeOptions): Promise<number[]>;
  encodeBatch(texts: string[], options?: EncodeOptions): Promise<number[][]>;
  /** Ids back to text; the mask id decodes as MASK_TOKEN, any other id >= vocabSize throws. */
  decode(ids: ArrayLike<number>): Promise<string>;
  /** This tokenizer as a Hugging Face tokenizer.json (text); withMask adds MASK_TOKEN at id vocabSize. */
  toJSON(options?: { withMask?: boolean }): string;
}

/** The added token an encoder checkpoint's tokenizer.json carries at the mask id. */
export const MASK_TOKEN = '<|mask|>';
