// One POST /v1/completions request, from checked fields to OpenAI's response.
//
// Per prompt, what is asked decides the path:
// - echo with logprobs ≤ 1 (lm-eval's loglikelihood requests): the prompt's token log-
//   likelihoods come from the batched scorer, the argmax and its log-probability giving the
//   top-1 entry; so does a greedy one-token completion (max_tokens 1, as newer lm-eval sends),
//   the argmax after the last prompt token. All prompts of the request go to the scorer as one
//   job, so they share passes with each other and with concurrent requests.
// - echo with logprobs 2..5: the prompt is walked through the KV-cache generator and every
//   position's logits are read back, giving the top-k on the host.
// - any other completion (sampling, several tokens): the KV-cache generator, one request at a
//   time; with logprobs, each step's logits are read back.
// Log-probabilities are the model's over its whole vocabulary; tokens are generated among the
// tokenizer's ids only. The prompt may be n_positions + 1 tokens long when nothing is generated
// (echo, max_tokens 0): its last token is then only predicted, never an input.
import { randomBytes, randomInt } from 'node:crypto';
import type { Tokenizer } from '../data/tokenizer.js';
import type { RowScore, ScoreRow } from '../eval/score.js';
import { generateTokens, type Generator } from '../infer/generator.js';
import { TextStream } from '../infer/text.js';
import type { ModelConfig } from '../model/config.js';
import type { Engine } from './engine.js';
import {
  badRequest,
  type Choice,
  type Completion,
  type CompletionRequest,
  type Logprobs,
  type Usage,
} from './protocol.js';
import { logSumExp, topIds, type TokenTexts } from './tokens.js';

/** What the server knows of its model. */
export interface ServedModel {
  /** The id clients name in `model` (the checkpoint path as given). */
  id: string;
  config: ModelConfig;
  tokenizer: Tokenizer;
  texts: TokenTexts;
  /** End-of-text: generation stops at it. */
  eos: number;
  /** Unix seconds (the checkpoint's config.json time), for /v1/models. */
  created: number;
}

/** Streaming: called with each chunk's choice in order; `aborted()` true stops generation early. */
export interface StreamSink {
  chunk(choice: Choice): void;
  aborted(): boolean;
}

interface Scored {
  /** Per prompt token 1..L−1: log p and the top-1 (id, log p), when the prompt was scored. */
  prompt?: { lp: number[]; top: { id: number; lp: number }[] };
  /** The greedy next token after the prompt and its log p, when the scorer chose it. */
  next?: { id: number; lp: number };
}

/** A logprobs entry list: tokens with their log p, top-k and text offset, built in order. */
class LogprobList {
  private readonly ids: number[] = [];
  private readonly lps: (number | null)[] = [];
  private readonly tops: (Record<string, number> | null)[] = [];
  private readonly offsets: number[] = [];

  constructor(private readonly texts: TokenTexts) {}

  get length(): number {
    return this.ids.length;
  }

  async add(id: number, lp: number | null, top: { id: number; lp: number }[] | null, offset: number): Promise<void> {
    this.ids.push(id);
    this.lps.push(lp);
    this.offsets.push(offset);
    if (!top) {
      this.tops.push(null);
      return;
    }
    const entry: Record<string, number> = {};
    for (const t of top) {
      const key = await this.texts.label(t.id);
      if (!(key in entry)) entry[key] = t.lp;
    }
    this.tops.push(entry);
  }

  /** Entries from..to as OpenAI's object. */
  async slice(from: number, to: number): Promise<Logprobs> {
    return {
      tokens: await Promise.all(this.ids.slice(from, to).map((id) => this.texts.label(id))),
      token_logprobs: this.lps.slice(from, to),
      top_logprobs: this.tops.slice(from, to),
      text_offset: this.offsets.slice(from, to),
    };
  }
}

/** The top-k of a row of logits (ids below n) as (id, log p) pairs, and log p of `id`. */
function fromLogits(logits: Float32Array, id: number, k: number, n: number) {
  const lse = logSumExp(logits);
  return { lp: logits[id] - lse, top: topIds(logits, k, n).map((t) => ({ id: t, lp: logits[t] - lse })) };
}

/** Finds stop sequences in growing text; holds back a tail that could still become one. */
export class StopScanner {
  text = '';
  private emitted = 0;
  private searched = 0;
  private readonly longest: number;

  constructor(private readonly stops: readonly string[]) {
    this.longest = Math.max(0, ...stops.map((s) => s.length));
  }

  /** Add text; returns the text now safe to show, and where a stop sequence begins, if one appeared. */
  push(piece: string): { show: string; stopAt: number | null } {
    this.text += piece;
    let stopAt: number | null = null;
    const from = Math.max(0, this.searched - this.longest + 1);
    for (const s of this.stops) {
      const i = this.text.indexOf(s, from);
      if (i >= 0 && (stopAt === null || i < stopAt)) stopAt = i;
    }
    this.searched = this.text.length;
    if (stopAt !== null) return { show: this.take(stopAt), stopAt };
    let hold = 0;
    for (const s of this.stops)
      for (let n = Math.min(s.length - 1, this.text.length); n > hold; n--)
        if (this.text.endsWith(s.slice(0, n))) {
          hold = n;
          break;
        }
    return { show: this.take(this.text.length - hold), stopAt: null };
  }

  /** Everything not yet shown (no stop sequence came). */
  finish(): string {
    return this.take(this.text.length);
  }

  /** How much has been shown. */
  get shown(): number {
    return this.emitted;
  }

  private take(upTo: number): string {
    const s = this.text.slice(this.emitted, Math.max(this.emitted, upTo));
    this.emitted = Math.max(this.emitted, upTo);
    return s;
  }
}

interface Planned {
  ids: number[];
  /** Score the prompt's tokens on the batched scorer (echo, logprobs ≤ 1). */
  scorePrompt: boolean;
  /** The scorer picks the one greedy completion token. */
  scoreNext: boolean;
  /** Row index in the scoring job, or −1. */
  row: number;
}

/** Tokenize and check every prompt before any GPU work: a bad one refuses the whole request. */
async function plan(model: ServedModel, req: CompletionRequest): Promise<Planned[]> {
  const { config, tokenizer } = model;
  const P = config.n_positions;
  const V = config.vocab_size;
  const out: Planned[] = [];
  for (let i = 0; i < req.prompts.length; i++) {
    const p = req.prompts[i];
    const where = req.prompts.length > 1 ? `prompt[${i}]` : 'prompt';
    let ids: number[];
    if ('text' in p) {
      ids = await tokenizer.encode(p.text, { special: true });
      // As OpenAI and GPT-2: an empty prompt starts after the end-of-text token.
      if (ids.length === 0) ids = [model.eos];
    } else ids = p.tokens;
    const bad = ids.find((t) => t >= V);
    if (bad !== undefined)
      throw badRequest(`${where}: token ${bad} is outside the model's vocabulary (0..${V - 1})`, 'prompt');
    const L = ids.length;
    const scoreOnly = req.echo && req.maxTokens === 0;
    if (L > P + (scoreOnly ? 1 : 0) || (!scoreOnly && L + req.maxTokens - 1 > P)) {
      throw badRequest(
        `This model's maximum context length is ${P} tokens; ${where} has ${L} tokens` +
          (req.maxTokens ? ` and max_tokens asks for ${req.maxTokens} more` : '') +
          (scoreOnly ? ` (echo with max_tokens 0 takes up to ${P + 1}: the last token is only scored)` : ''),
        'prompt',
        'context_length_exceeded',
      );
    }
    const k = req.logprobs;
    const lowK = k === null || k <= 1;
    const scorePrompt = req.echo && k !== null && k <= 1 && L > 1;
    const greedy = req.temperature === 0 || req.topK === 1;
    const scoreNext = req.maxTokens === 1 && greedy && lowK && tokenizer.vocabSize >= V;
    out.push({ ids, scorePrompt, scoreNext, row: -1 });
  }
  return out;
}

/** The scoring rows of the planned prompts (one per prompt that needs the scorer). */
function scoringRows(planned: Planned[]): ScoreRow[] {
  const rows: ScoreRow[] = [];
  for (const p of planned) {
    if (!p.scorePrompt && !p.scoreNext) continue;
    const { ids } = p;
    const input = p.scoreNext ? ids : ids.slice(0, -1);
    const targets = [...(p.scorePrompt ? ids.slice(1) : []), ...(p.scoreNext ? [-1] : [])];
    p.row = rows.length;
    rows.push({ input, targets });
  }
  return rows;
}

function unpack(p: Planned, r: RowScore, row: ScoreRow): Scored {
  const top = (j: number) => ({ id: r.argmax[j], lp: r.argmaxLogprobs?.[j] ?? NaN });
  const n = p.ids.length - 1;
  const out: Scored = {};
  if (p.scorePrompt) out.prompt = { lp: r.logprobs.slice(0, n), top: Array.from({ length: n }, (_, j) => top(j)) };
  if (p.scoreNext) out.next = top(row.targets.length - 1);
  return out;
}

/** Walk the prompt through the generator, reading every position's logits: log p and top-k of tokens 1..L−1. */
async function hostPromptLogprobs(gen: Generator, ids: number[], k: number, n: number) {
  const lp: number[] = [];
  const top: { id: number; lp: number }[][] = [];
  await gen.prefill(ids.slice(0, 1));
  for (let i = 1; i < ids.length; i++) {
    const r = fromLogits(await gen.logits(), ids[i], k, n);
    lp.push(r.lp);
    top.push(r.top);
    if (i + 1 < ids.length) await gen.step(ids[i]);
  }
  return { lp, top };
}

interface PromptOutcome {
  choice: Choice;
  usage: Usage;
}

type Top = { id: number; lp: number }[];

/** One prompt's choice: the echoed prompt, the completion, the logprobs; streamed through `sink` when given. */
async function completeOne(
  engine: Engine,
  model: ServedModel,
  req: CompletionRequest,
  index: number,
  p: Planned,
  scored: Scored,
  seed: number,
  sink?: StreamSink,
): Promise<PromptOutcome> {
  const { tokenizer, texts, config } = model;
  const { ids } = p;
  const k = req.logprobs;
  const n = Math.min(tokenizer.vocabSize, config.vocab_size);
  const promptText = await tokenizer.decode(ids);
  const list = new LogprobList(texts);
  const topOf = (t: Top) => (k === null ? null : t.slice(0, k));

  // The echoed prompt's entries; the first token has no log-probability.
  if (req.echo && k !== null) {
    let lp: number[] = [];
    let top: Top[] = [];
    if (scored.prompt) {
      lp = scored.prompt.lp;
      top = scored.prompt.top.map((t) => [t]);
    } else if (ids.length > 1) ({ lp, top } = await engine.generate((gen) => hostPromptLogprobs(gen, ids, k, n)));
    const offsets = await texts.offsets(ids, 0);
    await list.add(ids[0], null, null, offsets[0]);
    for (let i = 1; i < ids.length; i++) await list.add(ids[i], lp[i - 1], topOf(top[i - 1]), offsets[i]);
  }
  const promptEntries = list.length;
  let text = req.echo ? promptText : '';
  let sent = 0;
  const send = async (piece: string, upTo: number, finish: Choice['finish_reason'] = null) => {
    if (!sink || (!piece && upTo === sent && !finish)) return;
    const logprobs = k === null ? null : await list.slice(sent, upTo);
    sent = upTo;
    sink.chunk({ index, text: piece, logprobs, finish_reason: finish });
  };
  if (req.echo) await send(promptText, promptEntries);

  const stops = new StopScanner(req.stop);
  const generated: number[] = [];
  /** Where each generated token's text starts in the completion (whole characters before it). */
  const starts: number[] = [];
  let chars = 0;
  const decoder = new TextDecoder('utf-8');
  let finish: 'stop' | 'length' = 'length';
  let stopped = false;
  const entriesBefore = (upTo: number) => promptEntries + starts.filter((s) => s < upTo).length;
  const addToken = async (id: number, lp: number | null, top: Top) => {
    generated.push(id);
    starts.push(chars);
    if (k !== null) await list.add(id, lp, topOf(top), promptText.length + chars);
    chars += decoder.decode(await texts.bytes(id), { stream: true }).length;
  };
  /** New completion text: shown up to a stop sequence, if one appears (then true). */
  const feed = async (piece: string): Promise<boolean> => {
    const { show, stopAt } = stops.push(piece);
    text += show;
    if (stopAt !== null) {
      stopped = true;
      finish = 'stop';
    }
    await send(show, entriesBefore(stops.shown));
    return stopped;
  };

  if (req.maxTokens > 0 && p.scoreNext) {
    const next = scored.next!;
    if (next.id === model.eos) finish = 'stop';
    else {
      await addToken(next.id, k === null ? null : next.lp, [next]);
      const stream = new TextStream(tokenizer);
      await feed((await stream.push(next.id)) + (await stream.flush()));
    }
  } else if (req.maxTokens > 0) {
    await engine.generate(async (gen) => {
      const stream = new TextStream(tokenizer);
      const it = generateTokens(gen, ids, {
        maxTokens: req.maxTokens,
        temperature: req.temperature,
        topK: req.topK,
        topP: req.topP,
        seed,
        eosId: model.eos,
        vocab: tokenizer.vocabSize,
        withLogits: k !== null,
      });
      for (;;) {
        if (sink?.aborted()) {
          await it.return('max-tokens');
          return;
        }
        const r = await it.next();
        if (r.done) {
          if (r.value === 'eos') finish = 'stop';
          await feed(await stream.flush());
          return;
        }
        const { token, logits } = r.value;
        const lp = logits && k !== null ? fromLogits(logits, token, Math.max(k, 1), n) : null;
        await addToken(token, lp?.lp ?? null, lp?.top ?? []);
        if (await feed(await stream.push(token))) {
          await it.return('max-tokens');
          return;
        }
      }
    });
  }
  if (!stopped) {
    const rest = stops.finish();
    text += rest;
    await send(rest, list.length);
  }
  const cut = stopped ? entriesBefore(stops.shown) : list.length;
  await send('', cut, finish);
  return {
    choice: { index, text, logprobs: k === null ? null : await list.slice(0, cut), finish_reason: finish },
    usage: {
      prompt_tokens: ids.length,
      completion_tokens: generated.length,
      total_tokens: ids.length + generated.length,
    },
  };
}

export function completionId(): string {
  return `cmpl-${randomBytes(12).toString('hex')}`;
}

/**
 * Answer a checked request. With `sink`, every choice is streamed chunk by chunk (prompts one after another) and the
 * returned completion carries the usage; otherwise it is the whole response.
 */
export async function complete(
  engine: Engine,
  model: ServedModel,
  req: CompletionRequest,
  sink?: StreamSink,
): Promise<Completion> {
  const planned = await plan(model, req);
  const rows = scoringRows(planned);
  const wantTop = req.logprobs !== null;
  const results = rows.length ? await engine.score(rows, wantTop) : [];
  const seed = req.seed ?? randomInt(2 ** 31);
  const choices: Choice[] = [];
  const usage: Usage = { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 };
  for (let i = 0; i < planned.length; i++) {
    const p = planned[i];
    const scored = p.row >= 0 ? unpack(p, results[p.row], rows[p.row]) : {};
    const out = await completeOne(engine, model, req, i, p, scored, seed, sink);
    choices.push(out.choice);
    usage.prompt_tokens += out.usage.prompt_tokens;
    usage.completion_tokens += out.usage.completion_tokens;
    usage.total_tokens += out.usage.total_tokens;
    if (sink?.aborted()) break;
  }
  return {
    id: completionId(),
    object: 'text_completion',
    created: Math.floor(Date.now() / 1000),
    model: model.id,
    choices,
    usage,
  };
}
