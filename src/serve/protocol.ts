// The OpenAI completions protocol as `hlm serve` speaks it: the request body of
// POST /v1/completions checked field by field (unknown fields, wrong types and values outside
// their range are refused, never ignored), and OpenAI's error object. Fields OpenAI defines but
// hlm does not implement (n, best_of, suffix, penalties, logit_bias) are accepted only at their
// neutral values, so a request never silently means something else than what it says.
import { HlmError } from '../errors.js';

/** An HTTP error with OpenAI's error object: {"error": {"message", "type", "param", "code"}}. */
export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly param: string | null = null,
    readonly code: string | null = null,
    readonly type = status >= 500 ? 'server_error' : 'invalid_request_error',
  ) {
    super(message);
  }

  body(): { error: { message: string; type: string; param: string | null; code: string | null } } {
    return { error: { message: this.message, type: this.type, param: this.param, code: this.code } };
  }
}

/** A 400 naming the field at fault. */
export function badRequest(message: string, param: string | null = null, code: string | null = null): ApiError {
  return new ApiError(400, message, param, code);
}

/** One prompt: text to tokenize, or token ids as given. */
export type Prompt = { text: string } | { tokens: number[] };

export interface CompletionRequest {
  model: string;
  prompts: Prompt[];
  maxTokens: number;
  temperature: number;
  topP: number;
  /** 0 = off. */
  topK: number;
  /** null: a fresh seed per request. */
  seed: number | null;
  stop: string[];
  echo: boolean;
  /** How many top log-probabilities per token; null = no logprobs object. */
  logprobs: number | null;
  stream: boolean;
  /** stream_options.include_usage: a last chunk with the usage. */
  includeUsage: boolean;
}

/** OpenAI's defaults for the legacy completions endpoint. */
export const DEFAULT_MAX_TOKENS = 16;
/** OpenAI's limits: top logprobs per token, stop sequences. */
export const MAX_LOGPROBS = 5;
export const MAX_STOP = 4;

const KNOWN = new Set([
  'model',
  'prompt',
  'max_tokens',
  'temperature',
  'top_p',
  'top_k',
  'seed',
  'stop',
  'echo',
  'logprobs',
  'stream',
  'stream_options',
  'n',
  'best_of',
  'suffix',
  'presence_penalty',
  'frequency_penalty',
  'logit_bias',
  'user',
]);

const show = (v: unknown) => {
  const s = JSON.stringify(v);
  return s === undefined ? String(v) : s.length > 60 ? `${s.slice(0, 57)}...` : s;
};

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const isTokenId = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** The prompt field: a string, a list of strings, a list of token ids, or a list of such lists. */
function parsePrompt(v: unknown): Prompt[] {
  const fail = (m: string) => badRequest(m, 'prompt');
  if (typeof v === 'string') return [{ text: v }];
  if (!Array.isArray(v) || v.length === 0)
    throw fail(
      'prompt must be a string, a non-empty list of strings, a list of token ids or a list of such lists, got ' +
        show(v),
    );
  if (v.every((x) => typeof x === 'string')) return v.map((text) => ({ text }));
  if (v.every((x) => typeof x === 'number')) {
    const bad = v.findIndex((x) => !isTokenId(x));
    if (bad >= 0) throw fail(`prompt[${bad}] is ${show(v[bad])}, not a token id (an integer ≥ 0)`);
    return [{ tokens: v as number[] }];
  }
  if (v.every((x) => Array.isArray(x))) {
    return v.map((p: unknown[], i) => {
      if (p.length === 0) throw fail(`prompt[${i}] is an empty list of token ids`);
      const bad = p.findIndex((x) => !isTokenId(x));
      if (bad >= 0) throw fail(`prompt[${i}][${bad}] is ${show(p[bad])}, not a token id (an integer ≥ 0)`);
      return { tokens: p as number[] };
    });
  }
  throw fail('prompt mixes strings, token ids and lists: give one kind');
}

/** Check a POST /v1/completions body; throws a 400 ApiError naming the first field at fault. */
export function parseCompletionRequest(body: unknown): CompletionRequest {
  if (!isObject(body)) throw badRequest(`the request body must be a JSON object, got ${show(body)}`);
  for (const k of Object.keys(body))
    if (!KNOWN.has(k)) throw badRequest(`Unrecognized request argument supplied: ${k}`, k, 'unknown_field');
  const get = (k: string) => (body[k] === null ? undefined : body[k]);
  const fail = (k: string, what: string) => badRequest(`${k} must be ${what}, got ${show(body[k])}`, k);
  const int = (k: string, dflt: number, min: number, max = Number.MAX_SAFE_INTEGER): number => {
    const v = get(k) ?? dflt;
    if (!(typeof v === 'number' && Number.isSafeInteger(v) && v >= min && v <= max))
      throw fail(k, max === Number.MAX_SAFE_INTEGER ? `an integer ≥ ${min}` : `an integer in ${min}..${max}`);
    return v;
  };
  const num = (k: string, dflt: number, ok: (x: number) => boolean, what: string): number => {
    const v = get(k) ?? dflt;
    if (!(typeof v === 'number' && Number.isFinite(v) && ok(v))) throw fail(k, what);
    return v;
  };
  const bool = (k: string): boolean => {
    const v = get(k) ?? false;
    if (typeof v !== 'boolean') throw fail(k, 'true or false');
    return v;
  };

  const model = body.model;
  if (typeof model !== 'string' || model === '')
    throw badRequest(
      model === undefined ? 'you must provide a model parameter' : `model must be a string, got ${show(model)}`,
      'model',
    );
  if (body.prompt === undefined || body.prompt === null)
    throw badRequest('you must provide a prompt parameter', 'prompt');
  const prompts = parsePrompt(body.prompt);

  // Neutral values only.
  if (int('n', 1, 1) !== 1) throw badRequest('n > 1 is not supported: send the prompt again with another seed', 'n');
  if (int('best_of', 1, 1) !== 1) throw badRequest('best_of > 1 is not supported', 'best_of');
  const suffix = get('suffix');
  if (suffix !== undefined && suffix !== '') throw badRequest('suffix (insertion) is not supported', 'suffix');
  for (const k of ['presence_penalty', 'frequency_penalty'])
    if (num(k, 0, (x) => x >= -2 && x <= 2, 'a number in -2..2') !== 0)
      throw badRequest(`${k} is not supported (only 0)`, k);
  const bias = get('logit_bias');
  if (bias !== undefined && !(isObject(bias) && Object.keys(bias).length === 0))
    throw badRequest('logit_bias is not supported (only {})', 'logit_bias');
  const user = get('user');
  if (user !== undefined && typeof user !== 'string') throw fail('user', 'a string');

  const stopRaw = get('stop');
  let stop: string[] = [];
  if (typeof stopRaw === 'string') stop = [stopRaw];
  else if (Array.isArray(stopRaw)) stop = stopRaw as string[];
  else if (stopRaw !== undefined) throw fail('stop', `a string or a list of up to ${MAX_STOP} strings`);
  if (stop.length > MAX_STOP || !stop.every((s) => typeof s === 'string' && s.length > 0))
    throw fail('stop', `a string or a list of up to ${MAX_STOP} non-empty strings`);

  const stream = bool('stream');
  const options = get('stream_options');
  let includeUsage = false;
  if (options !== undefined) {
    if (!stream) throw badRequest('stream_options is only allowed with stream: true', 'stream_options');
    if (!isObject(options) || Object.keys(options).some((k) => k !== 'include_usage'))
      throw fail('stream_options', 'an object with include_usage');
    const inc = options.include_usage ?? false;
    if (typeof inc !== 'boolean') throw badRequest('stream_options.include_usage must be true or false');
    includeUsage = inc;
  }
  const logprobs = get('logprobs');
  if (logprobs !== undefined) int('logprobs', 0, 0, MAX_LOGPROBS);
  const topK = int('top_k', 0, -1);
  const seed = get('seed');
  if (seed !== undefined) int('seed', 0, 0);
  return {
    model,
    prompts,
    maxTokens: int('max_tokens', DEFAULT_MAX_TOKENS, 0),
    temperature: num('temperature', 1, (x) => x >= 0 && x <= 2, 'a number in 0..2'),
    topP: num('top_p', 1, (x) => x > 0 && x <= 1, 'a number in (0, 1]'),
    topK: topK === -1 ? 0 : topK,
    seed: seed === undefined ? null : (seed as number),
    stop,
    echo: bool('echo'),
    logprobs: logprobs === undefined ? null : (logprobs as number),
    stream,
    includeUsage,
  };
}

/** OpenAI's logprobs object of one choice. */
export interface Logprobs {
  tokens: string[];
  token_logprobs: (number | null)[];
  top_logprobs: (Record<string, number> | null)[];
  text_offset: number[];
}

export interface Choice {
  index: number;
  text: string;
  logprobs: Logprobs | null;
  finish_reason: 'stop' | 'length' | null;
}

export interface Usage {
  prompt_tokens: number;
  completion_tokens: number;
  total_tokens: number;
}

export interface Completion {
  id: string;
  object: 'text_completion';
  created: number;
  model: string;
  choices: Choice[];
  usage?: Usage | null;
}

/** A user error from the model layer (a token outside the vocabulary, ...) as a 400. */
export function asApiError(e: unknown): ApiError | undefined {
  if (e instanceof ApiError) return e;
  if (e instanceof HlmError) return badRequest(e.message);
  return undefined;
}
