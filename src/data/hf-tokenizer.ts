// Any Hugging Face tokenizer.json, through the `tokenizers` binding (Rust), and byte-level BPE
// training on a corpus. The binding's train() takes no trainer settings: it always runs
// BpeTrainer's defaults (30,000 tokens, counting the characters seen, no initial alphabet, no
// special tokens). So training here runs those defaults and then cuts the result to the
// requested size, which is exact: the trainer adds merges one at a time, most frequent first,
// so a smaller vocabulary is a prefix of the merges. The full 256-byte alphabet is added (ids
// 0..255 in GPT-2's byte order) so that any text, even unseen characters, encodes and decodes.
// The binding's train() also prints to stdout, so it runs in a child process (runTrainer).
import { createHash } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Tokenizer as NativeTokenizer } from 'tokenizers';
import { HlmError } from '../errors.js';
import { log } from '../log.js';
import { BYTE_ORDER, BYTE_TO_CHAR } from './byte-level.js';
import { readDocuments, type CorpusFile } from './corpus.js';
import { MASK_TOKEN, type EncodeOptions, type Tokenizer } from './tokenizer-interface.js';
import { hfByteLevelJson, mergeText, withMaskToken } from './tokenizer-json.js';

/** End-of-text candidates, in order of preference, for tokenizer.json files made elsewhere. */
const EOT_TOKENS = ['<|endoftext|>', '</s>', '<|end_of_text|>', '<eos>', '<|eot_id|>', '[SEP]'];

/** The end-of-text token of tokenizers trained here. */
export const TRAINED_EOT = '<|endoftext|>';

/** BpeTrainer::default().vocab_size: the most tokens the binding's train() ever makes. */
export const BINDING_TRAINER_VOCAB = 30000;

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

/** The trainer's starting point: GPT-2's byte-level pre-tokenizer, decoder and post-processor around an empty BPE. */
function untrainedJson(): string {
  return JSON.stringify(hfByteLevelJson({}, [], []));
}

export interface TrainBpeOptions {
  /** Tokens in the result, counting the 256 bytes and the end-of-text token (>= 257). */
  vocabSize: number;
}

/**
 * Trains a byte-level BPE tokenizer (GPT-2's pre-tokenizer) on the documents of `inputs`
 * (anything --data takes except shards). Ids: 0..255 the bytes, then merged tokens in merge
 * order, then `<|endoftext|>` last. The result can be smaller than asked when the corpus runs
 * out of pairs to merge (a warning says so); a size the binding's trainer cannot reach is refused.
 */
export function trainBpeTokenizer(inputs: readonly (string | CorpusFile)[], options: TrainBpeOptions): HfTokenizer {
  const { vocabSize } = options;
  if (!(Number.isInteger(vocabSize) && vocabSize >= 257)) {
    throw new HlmError(
      `BPE vocabulary size ${vocabSize}: needs an integer >= 257 (256 bytes and the end-of-text token)`,
    );
  }
  const scratch = mkdtempSync(join(tmpdir(), 'hlm-bpe-'));
  try {
    // The trainer reads files line by line; documents are written one after another.
    const text = join(scratch, 'corpus.txt');
    const fd = openSync(text, 'w');
    try {
      for (const doc of readDocuments(inputs)) writeSync(fd, doc.endsWith('\n') ? doc : doc + '\n');
    } finally {
      closeSync(fd);
    }
    const init = join(scratch, 'untrained.json');
    writeFileSync(init, untrainedJson());
    const out = join(scratch, 'trained.json');
    runTrainer(init, text, out);
    const trained = JSON.parse(readFileSync(out, 'utf8')) as {
      model: { vocab: Record<string, number>; merges: unknown[] };
    };
    return HfTokenizer.fromJson(
      cutToSize(trained.model.vocab, trained.model.merges, vocabSize),
      'trained BPE tokenizer',
    );
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/**
 * The binding's train() prints blank lines on stdout (its progress bars), where hlm's --json
 * results go, so it runs in a child process whose stdout is dropped.
 */
function runTrainer(init: string, corpus: string, out: string): void {
  const binding = createRequire(import.meta.url).resolve('tokenizers');
  const code = `const [binding, init, corpus, out] = process.argv.slice(1);
const { Tokenizer } = require(binding);
const t = Tokenizer.fromString(require('node:fs').readFileSync(init, 'utf8'));
t.train([corpus]);
t.save(out, false);`;
  const child = spawnSync(process.execPath, ['-e', code, binding, init, corpus, out], {
    stdio: ['ignore', 'ignore', 'pipe'],
    encoding: 'utf8',
  });
  if (child.status !== 0) {
    throw new Error(
      `BPE training failed (${child.error?.message ?? `exit ${child.status ?? child.signal}`}): ` +
        `${child.stderr?.trim() ?? ''}`,
    );
  }
}

/** The trained merges renumbered after the full byte alphabet and cut to `vocabSize` tokens. */
function cutToSize(trainedVocab: Record<string, number>, trainedMerges: readonly unknown[], vocabSize: number): string {
  const vocab = new Map<string, number>(BYTE_ORDER.map((b, i) => [BYTE_TO_CHAR[b], i]));
  const merges: string[] = [];
  const target = vocabSize - 1; // the end-of-text token comes last
  // As BpeTrainer does: while the vocabulary is short of its size, take the next merge
  // (a merge can rebuild a token that exists already; it is kept and adds no id).
  for (const m of trainedMerges) {
    if (vocab.size >= target) break;
    const text = mergeText(m);
    const [a, b] = text?.split(' ') ?? [];
    if (!text || a === undefined || b === undefined || !vocab.has(a) || !vocab.has(b))
      throw new Error(`trained BPE merge ${JSON.stringify(m)} is malformed`);
    merges.push(text);
    if (!vocab.has(a + b)) vocab.set(a + b, vocab.size);
  }
  if (vocab.size < target) {
    const trainedSize = Object.keys(trainedVocab).length;
    if (trainedSize >= BINDING_TRAINER_VOCAB) {
      throw new HlmError(
        `BPE vocabulary size ${vocabSize} is out of reach: the tokenizers Node binding trains with BpeTrainer's ` +
          `defaults ` +
          `(${BINDING_TRAINER_VOCAB} tokens including the characters seen), which gives at most ${vocab.size + 1} ` +
          `tokens here`,
      );
    }
    log.warn(`BPE training: the corpus ran out of pairs to merge at ${vocab.size + 1} tokens (asked for ${vocabSize})`);
  }
  const eot = vocab.size;
  vocab.set(TRAINED_EOT, eot);
  return JSON.stringify(hfByteLevelJson(Object.fromEntries(vocab), merges, [{ id: eot, content: TRAINED_EOT }]));
}
