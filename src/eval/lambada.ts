// LAMBADA as EleutherAI's lm-evaluation-harness task `lambada_openai` sees it: readers for
// the two common formats, the context/target split and the token-level request.
//
// Split (the harness's doc_to_text / doc_to_target, `text.split(' ')[:-1] | join(' ')` and
// `' ' + text.split(' ')[-1]`): context = the text up to (not including) its LAST U+0020
// space, target = that space and everything after it. Only U+0020 counts as a space (a tab,
// a newline or a no-break space inside a passage is ordinary text); the text is not trimmed,
// so a passage ending in a space has the target " " (an empty last word), exactly as the
// harness would score it, and a passage with two spaces before its last word keeps one in its
// context. Quotes and punctuation stay attached to the word they touch ("signs." is the
// target " signs."). A passage with no space at all has no target and is an error.
//
// Tokens (the harness's loglikelihood request, encoding context and target separately):
// context_enc = encode(context) (the end-of-text token alone when the context is empty),
// continuation_enc = encode(target); the model input is (context_enc + continuation_enc)
// without its last token, cut from the LEFT to n_positions; the target tokens are predicted
// at the last len(continuation_enc) positions.
import { readFileSync } from 'node:fs';
import { HlmError } from '../errors.js';
import type { Tokenizer } from '../data/tokenizer.js';

export interface LambadaPassage {
  /** 0-based index among the passages read (blank lines are skipped and not counted). */
  index: number;
  /** 1-based line of the file it came from. */
  line: number;
  text: string;
  /** The whole JSONL object (the harness's `doc`); a plain-text passage's is {text}. */
  doc?: Record<string, unknown>;
}

export type LambadaFormat = 'jsonl' | 'text';

/** JSONL when the file name ends in .jsonl or .json, otherwise plain text (one passage a line). */
export function lambadaFormatOf(path: string): LambadaFormat {
  return /\.jsonl?$/i.test(path) ? 'jsonl' : 'text';
}

/** The lines of a file without their terminators ("\n" or "\r\n"); a final newline ends the last line. */
function fileLines(content: string): string[] {
  const lines = content.split('\n');
  if (lines.length && lines[lines.length - 1] === '') lines.pop();
  return lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
}

/** Parse JSONL content: one object with a string `text` per non-blank line. */
export function parseLambadaJsonl(content: string, file: string): LambadaPassage[] {
  const out: LambadaPassage[] = [];
  fileLines(content).forEach((raw, i) => {
    if (raw.trim() === '') return;
    let obj: unknown;
    try {
      obj = JSON.parse(raw);
    } catch (e) {
      throw new HlmError(`${file}:${i + 1}: not valid JSON (${(e as Error).message})`);
    }
    const text =
      obj !== null && typeof obj === 'object' && !Array.isArray(obj)
        ? (obj as Record<string, unknown>).text
        : undefined;
    if (typeof text !== 'string') throw new HlmError(`${file}:${i + 1}: expected an object with a string "text" field`);
    out.push({ index: out.length, line: i + 1, text, doc: obj as Record<string, unknown> });
  });
  return out;
}

/** Parse plain text: one passage per non-blank line (the original LAMBADA release). */
export function parseLambadaText(content: string, _file: string): LambadaPassage[] {
  const out: LambadaPassage[] = [];
  fileLines(content).forEach((raw, i) => {
    if (raw.trim() === '') return;
    out.push({ index: out.length, line: i + 1, text: raw });
  });
  return out;
}

/** Read a LAMBADA file; every passage is checked to have a context/target split. */
export function readLambada(path: string, options: { format?: LambadaFormat; limit?: number } = {}): LambadaPassage[] {
  return readLambadaFile(path, options).passages;
}

/** readLambada, plus how many passages the file holds before the limit. */
export function readLambadaFile(
  path: string,
  options: { format?: LambadaFormat; limit?: number } = {},
): { passages: LambadaPassage[]; total: number } {
  let content: string;
  try {
    content = readFileSync(path, 'utf8');
  } catch (e) {
    throw new HlmError(`cannot read LAMBADA data ${path}: ${(e as Error).message}`);
  }
  const format = options.format ?? lambadaFormatOf(path);
  let passages = format === 'jsonl' ? parseLambadaJsonl(content, path) : parseLambadaText(content, path);
  const total = passages.length;
  if (options.limit !== undefined) passages = passages.slice(0, options.limit);
  for (const p of passages) splitLambada(p.text, `${path}:${p.line}`);
  if (passages.length === 0) throw new HlmError(`${path}: no passages`);
  return { passages, total };
}

/** The harness's split: context before the last space, target = that space and the last word. */
export function splitLambada(text: string, where = 'passage'): { context: string; target: string } {
  const i = text.lastIndexOf(' ');
  if (i < 0) throw new HlmError(`${where}: the passage has no space, so it has no last word to predict`);
  return { context: text.slice(0, i), target: text.slice(i) };
}

export interface LambadaRequest {
  index: number;
  context: string;
  target: string;
  /** Model input, at most nPositions tokens. */
  input: number[];
  /** The target's tokens: predicted at the last targetTokens.length positions of input. */
  targetTokens: number[];
}

/** Token-level request for one passage (see the header). */
export async function lambadaRequest(
  tokenizer: Tokenizer,
  passage: Pick<LambadaPassage, 'index' | 'text'>,
  nPositions: number,
  where = 'passage',
): Promise<LambadaRequest> {
  const { context, target } = splitLambada(passage.text, where);
  const contextEnc = context === '' ? [tokenizer.eotId] : await tokenizer.encode(context);
  const targetTokens = await tokenizer.encode(target);
  if (targetTokens.length === 0)
    throw new HlmError(`${where}: the target ${JSON.stringify(target)} encodes to no tokens`);
  if (targetTokens.length > nPositions)
    throw new HlmError(
      `${where}: the target has ${targetTokens.length} tokens, more than the model's n_positions ${nPositions}`,
    );
  const whole = [...contextEnc, ...targetTokens];
  const input = whole.slice(Math.max(0, whole.length - (nPositions + 1)), whole.length - 1);
  return { index: passage.index, context, target, input, targetTokens };
}

export interface PassageScore {
  /** Σ over target tokens of log p(token | everything before it). */
  logLikelihood: number;
  /** Every target token is the model's argmax. */
  greedy: boolean;
}

export interface LambadaMetrics {
  n: number;
  /** Mean of greedy. */
  accuracy: number;
  /** exp(−mean over passages of the summed log-likelihood). */
  perplexity: number;
}

/** lambada_openai's aggregation: accuracy = mean greedy, perplexity = exp(−mean log-likelihood). */
export function aggregateLambada(scores: readonly PassageScore[]): LambadaMetrics {
  const n = scores.length;
  if (n === 0) throw new HlmError('no passages were scored');
  let ll = 0;
  let correct = 0;
  for (const s of scores) {
    ll += s.logLikelihood;
    if (s.greedy) correct++;
  }
  return { n, accuracy: correct / n, perplexity: Math.exp(-ll / n) };
}
