// Any Hugging Face tokenizer.json, through the `tokenizers` binding (Rust), and byte-level BPE
// training on a corpus. Training runs in TypeScript (bpe-train.ts): the binding's train() takes no
// trainer settings and stops at BpeTrainer's default 30,000 tokens. The full 256-byte alphabet
// comes first (ids 0..255 in GPT-2's byte order) so that any text, even unseen characters,
// encodes and decodes; then the merged tokens in merge order; then <|endoftext|>.
import { createHash } from 'node:crypto';
import { Tokenizer as NativeTokenizer } from 'tokenizers';
import { HlmError } from '../errors.js';
import { log } from '../log.js';
import { MAX_BPE_TOKENS, PieceCounts, trainBpe } from './bpe-train.js';
import { readDocuments, type CorpusFile } from './corpus.js';
import { MASK_TOKEN, type EncodeOptions, type Tokenizer } from './tokenizer-interface.js';
import { hfByteLevelJson, withMaskToken } from './tokenizer-json.js';

/** End-of-text candidates, in order of preference, for tokenizer.json files made elsewhere. */
const EOT_TOKENS = ['<|endoftext|>', '</s>', '<|end_of_text|>', '<eos>', '<|eot_id|>', '[SEP]'];

/** The end-of-text token of tokenizers trained here. */
export const TRAINED_EOT = '<|endoftext|>';

/** The largest vocabulary trainBpeTokenizer makes: the trainer's token limit and <|endoftext|>. */
export const MAX_TRAINED_VOCAB = MAX_BPE_TOKENS + 1;

interface AddedTokenJson {
  id: number;
  content: string;
  special?: boolean;
}

function parse(json: string, source: string): { added_tokens?: AddedTokenJson[]; model?: { type?: string } } {
  try {
    const doc = JSON.parse(json) as unknown;
    if (doc === null || typeof doc !== 'object' || !('model' in doc)) throw new Error('no "model" object');
    return doc as { added_tokens?: AddedTokenJson[]; model?: { type?: string } };
  } catch (err) {
    throw new HlmError(`${source}: not a Hugging Face tokenizer.json (${(err as Error).message})`);
  }
}

function native(json: string, source: string): NativeTokenizer {
  try {
    return NativeTokenizer.fromString(json);
  } catch (err) {
    throw new HlmError(`${source}: the tokenizers library refused it: ${(err as Error).message}`);
  }
}

export class HfTokenizer implements Tokenizer {
  readonly name: string;
  readonly fingerprint: string;
  readonly vocabSize: number;
  readonly eotId: number;
  readonly specialIds: readonly number[];

  private constructor(
    private readonly tok: NativeTokenizer,
    private readonly json: string,
    modelType: string,
    eotId: number,
    vocabSize: number,
    specialIds: number[],
  ) {
    this.vocabSize = vocabSize;
    this.eotId = eotId;
    this.specialIds = specialIds;
    this.name = `hf-${modelType.toLowerCase()}-${vocabSize}`;
    this.fingerprint = `hf-${createHash('sha256').update(json).digest('hex').slice(0, 32)}`;
  }

  /**
   * A tokenizer.json text. A MASK_TOKEN added as the last id (as toJSON({ withMask }) writes it)
   * is taken off again, so the base vocabulary and the mask id come back unchanged.
   */
  static fromJson(json: string, source = 'tokenizer.json'): HfTokenizer {
    const doc = parse(json, source);
    let tok = native(json, source);
    let vocab = tok.getVocab(true);
    const maskAt = vocab[MASK_TOKEN];
    if (maskAt !== undefined && (doc.added_tokens ?? []).some((t) => t.content === MASK_TOKEN)) {
      const others = Object.entries(vocab)
        .filter(([t]) => t !== MASK_TOKEN)
        .reduce((m, [, id]) => Math.max(m, id), -1);
      if (maskAt === others + 1) {
        doc.added_tokens = (doc.added_tokens ?? []).filter((t) => t.content !== MASK_TOKEN);
        json = JSON.stringify(doc);
        tok = native(json, source);
        vocab = tok.getVocab(true);
      }
    }
    const vocabSize = Object.values(vocab).reduce((m, id) => Math.max(m, id), -1) + 1;
    const eot = EOT_TOKENS.map((t) => vocab[t]).find((id) => id !== undefined);
    if (eot === undefined) {
      throw new HlmError(
        `${source}: no end-of-text token (looked for ${EOT_TOKENS.join(' ')}); hlm separates documents with one`,
      );
    }
    const specialIds = (doc.added_tokens ?? []).filter((t) => t.special).map((t) => t.id);
    if (!specialIds.includes(eot)) specialIds.push(eot);
    return new HfTokenizer(
      tok,
      json,
      doc.model?.type ?? 'unknown',
      eot,
      vocabSize,
      specialIds.sort((a, b) => a - b),
    );
  }

  async encode(text: string, _options: EncodeOptions = {}): Promise<number[]> {
    const enc = await this.tok.encode(text, null, { addSpecialTokens: false });
    return enc.getIds();
  }

  async encodeBatch(texts: string[], _options: EncodeOptions = {}): Promise<number[][]> {
    if (texts.length === 0) return [];
    const encs = await this.tok.encodeBatch(texts, { addSpecialTokens: false });
    return encs.map((e) => e.getIds());
  }

  async decode(ids: ArrayLike<number>): Promise<string> {
    const mask = this.vocabSize;
    let text = '';
    let run: number[] = [];
    const flush = async () => {
      if (run.length) text += await this.tok.decode(run, false);
      run = [];
    };
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i];
      if (id === mask) {
        await flush();
        text += MASK_TOKEN;
        continue;
      }
      if (!(Number.isInteger(id) && id >= 0 && id < mask))
        throw new RangeError(`${this.name}: token id ${id} is outside the vocabulary (0..${mask - 1})`);
      run.push(id);
    }
    await flush();
    return text;
  }

  toJSON(options: { withMask?: boolean } = {}): string {
    return options.withMask ? withMaskToken(this.json, this.vocabSize) : this.json;
  }
}

export interface TrainBpeOptions {
  /** Tokens in the result, counting the 256 bytes and the end-of-text token (>= 257). */
  vocabSize: number;
}

/**
 * Trains a byte-level BPE tokenizer (GPT-2's pre-tokenizer) on the documents of `inputs`
 * (anything --data takes except shards). Ids: 0..255 the bytes, then merged tokens in merge
 * order, then `<|endoftext|>` last. The result is smaller than asked only when the corpus runs
 * out of pairs to merge (a warning says so).
 */
export async function trainBpeTokenizer(
  inputs: readonly (string | CorpusFile)[],
  options: TrainBpeOptions,
): Promise<HfTokenizer> {
  const { vocabSize } = options;
  if (!(Number.isInteger(vocabSize) && vocabSize >= 257 && vocabSize <= MAX_TRAINED_VOCAB)) {
    throw new HlmError(
      `BPE vocabulary size ${vocabSize}: needs an integer >= 257 (256 bytes and the end-of-text token) and at most ` +
        `${MAX_TRAINED_VOCAB}`,
    );
  }
  const pieces = new PieceCounts();
  for await (const doc of readDocuments(inputs)) pieces.add(doc);
  const { tokens, merges, exhausted } = trainBpe(pieces, vocabSize - 1);
  if (exhausted)
    log.warn(
      `BPE training: the corpus ran out of pairs to merge at ${tokens.length + 1} tokens (asked for ${vocabSize})`,
    );
  const vocab = Object.fromEntries(tokens.map((t, id) => [t, id]));
  const eot = tokens.length;
  vocab[TRAINED_EOT] = eot;
  const json = JSON.stringify(hfByteLevelJson(vocab, merges, [{ id: eot, content: TRAINED_EOT }]));
  return HfTokenizer.fromJson(json, 'trained BPE tokenizer');
}
