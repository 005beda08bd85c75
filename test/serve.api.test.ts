// hlm serve, through the official `openai` npm client as the real client (completions with and
// without echo and logprobs, streaming, models), raw HTTP for malformed requests, the API key,
// an encoder's refusal, the log-likelihoods of 50 LAMBADA passages against eval-lambada's
// samples file, a bounded load test, and draining on SIGTERM (the command in a child process).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import OpenAI from 'openai';
import { openTestGpu } from './helpers/gpu.js';
import { repoRoot } from './helpers/cli.js';
import type { Gpu } from '../src/gpu/device.js';
import { loadTokenizer, type Tokenizer } from '../src/data/tokenizer.js';
import { lambadaRequest, readLambada, splitLambada } from '../src/eval/lambada.js';
import { Generator, generate } from '../src/infer/generator.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { initParams, paramLayout } from '../src/model/params.js';
import { gpt2Forward } from '../src/reference/gpt2.js';
import { startServing, type Serving } from '../src/serve/serve.js';

const LAMBADA = '/work/shared/data/lambada/lambada_test_sample200.jsonl';
const abs = Math.abs;

let gpu: Gpu;
let dir: string;
let tok: Tokenizer;
let ck: string;
let config: ModelConfig;
let params: Float32Array;
let serving: Serving;
let url: string;
let client: OpenAI;

/** A tiny random decoder with GPT-2's vocabulary; the embeddings scaled up so the argmax is clear. */
function tinyDecoder(seed: number, extra: Partial<ModelConfig> = {}) {
  const c: ModelConfig = {
    ...preset('tiny'),
    n_layer: 2,
    n_embd: 32,
    n_head: 2,
    n_positions: 128,
    eos_token_id: 50256,
    ...extra,
  };
  const p = initParams(c, seed);
  const wte = paramLayout(c).byName.get('transformer.wte.weight')!;
  for (let i = wte.offset; i < wte.offset + wte.size; i++) p[i] *= 20;
  return { config: c, params: p };
}

beforeAll(async () => {
  gpu = await openTestGpu();
  dir = mkdtempSync(join(tmpdir(), 'hlm-serve-'));
  tok = await loadTokenizer('gpt2');
  ({ config, params } = tinyDecoder(3));
  ck = join(dir, 'ck');
  await saveCheckpoint(ck, { config, params, tokenizerJson: tok.toJSON() });
  serving = await startServing(gpu, { model: ck, host: '127.0.0.1', port: 0, maxBatch: 8 });
  url = `http://127.0.0.1:${serving.server.address().port}`;
  client = new OpenAI({ baseURL: `${url}/v1`, apiKey: 'unused', maxRetries: 0 });
}, 120_000);

afterAll(async () => {
  await serving?.close();
  gpu?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** The float64 reference's log p of each token after the first. */
function referenceLogprobs(ids: number[]): { lp: number[]; argmax: number[]; margin: number[] } {
  const layout = paramLayout(config);
  const rec: Record<string, Float64Array> = {};
  for (const t of layout.tensors) rec[t.name] = Float64Array.from(params.subarray(t.offset, t.offset + t.size));
  const V = config.vocab_size;
  const lps = gpt2Forward(rec, config, ids, 1, ids.length, { logProbs: true }).logProbs!;
  const lp: number[] = [];
  const argmax: number[] = [];
  const margin: number[] = [];
  for (let i = 1; i < ids.length; i++) {
    const row = (i - 1) * V;
    lp.push(lps[row + ids[i]]);
    let best = 0;
    let second = -Infinity;
    for (let v = 1; v < V; v++) {
      if (lps[row + v] > lps[row + best]) {
        second = lps[row + best];
        best = v;
      } else if (lps[row + v] > second) second = lps[row + v];
    }
    argmax.push(best);
    margin.push(lps[row + best] - second);
  }
  return { lp, argmax, margin };
}

/** The CLI in a child process, without blocking this process's event loop (a server runs in it). */
function spawnHlm(args: string[]) {
  const child = spawn(process.execPath, [join(repoRoot(), 'bin/run.js'), ...args], {
    cwd: repoRoot(),
    env: { ...process.env, HLM_LOG_LEVEL: 'warn' },
  });
  const out = { stdout: '', stderr: '' };
  child.stdout.on('data', (d) => (out.stdout += d));
  child.stderr.on('data', (d) => (out.stderr += d));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, out, exited };
}

async function hlmAsync(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  const { out, exited } = spawnHlm(args);
  const status = await exited;
  return { status, ...out };
}

async function raw(path: string, init: RequestInit = {}): Promise<{ status: number; body: Record<string, unknown> }> {
  const r = await fetch(`${url}${path}`, init);
  return { status: r.status, body: (await r.json()) as Record<string, unknown> };
}

const post = (body: unknown, extra: RequestInit = {}) =>
  raw('/v1/completions', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    ...extra,
  });

test('GET /v1/models and /health', async () => {
  const models = await client.models.list();
  expect(models.data.map((m) => m.id)).toEqual([ck]);
  expect((await client.models.retrieve(ck)).id).toBe(ck);
  const h = await raw('/health');
  expect(h).toEqual({ status: 200, body: { status: 'ok', model: ck } });
});

test('a greedy completion is the KV-cache generator greedy output', async () => {
  const prompt = 'The history of the city';
  const r = await client.completions.create({ model: ck, prompt, max_tokens: 6, temperature: 0 });
  const gen = await Generator.create(gpu, config, params);
  const ids: number[] = [];
  for await (const t of generate(gen, await tok.encode(prompt), { maxTokens: 6, temperature: 0, eosId: 50256 }))
    ids.push(t);
  gen.destroy();
  expect(r.object).toBe('text_completion');
  expect(r.model).toBe(ck);
  expect(r.choices).toHaveLength(1);
  expect(r.choices[0].text).toBe(await tok.decode(ids));
  expect(r.choices[0].finish_reason).toBe(ids.length === 6 ? 'length' : 'stop');
  expect(r.choices[0].logprobs).toBeNull();
  const n = (await tok.encode(prompt)).length;
  expect(r.usage).toEqual({ prompt_tokens: n, completion_tokens: ids.length, total_tokens: n + ids.length });
}, 60_000);

test('echo + logprobs: every prompt token scored, the first null; equal to the float64 reference', async () => {
  const prompt = 'A clear stone, and inside it a small ivory statue.';
  const r = await client.completions.create({ model: ck, prompt, max_tokens: 0, echo: true, logprobs: 1 });
  const ids = await tok.encode(prompt);
  const c = r.choices[0];
  const lp = c.logprobs!;
  expect(c.text).toBe(prompt);
  expect(c.finish_reason).toBe('length');
  expect(lp.tokens).toHaveLength(ids.length);
  expect(lp.tokens!.join('')).toBe(prompt);
  expect(lp.token_logprobs![0]).toBeNull();
  expect(lp.top_logprobs![0]).toBeNull();
  // text_offset: where each token starts in the text.
  let at = 0;
  lp.tokens!.forEach((t, i) => {
    expect(lp.text_offset![i]).toBe(at);
    at += t.length;
  });
  const ref = referenceLogprobs(ids);
  for (let i = 1; i < ids.length; i++) {
    const got = lp.token_logprobs![i]!;
    expect(abs(got - ref.lp[i - 1])).toBeLessThan(1e-4 * (1 + abs(ref.lp[i - 1])));
    const top = lp.top_logprobs![i]!;
    const [[key, value]] = Object.entries(top);
    expect(Object.keys(top)).toHaveLength(1);
    expect(value).toBeGreaterThanOrEqual(got);
    if (ref.margin[i - 1] > 1e-3) expect(key).toBe(await tok.decode([ref.argmax[i - 1]]));
    // lm-eval's greedy test compares the values: the top-1 of a greedy token is exactly its own logprob.
    if (key === lp.tokens![i]) expect(value).toBe(got);
  }
}, 60_000);

test("lm-eval's loglikelihood requests: token-id prompts, echo, max_tokens 1 (or 0), logprobs 1", async () => {
  const texts = ['The cat sat on the mat', 'Once upon a time there', 'Paris is the capital'];
  const prompts = await Promise.all(texts.map((t) => tok.encode(t)));
  const body = { model: ck, prompt: prompts, echo: true, logprobs: 1, temperature: 0, seed: 1234 };
  const one = await client.completions.create({ ...body, max_tokens: 1 });
  const zero = await client.completions.create({ ...body, max_tokens: 0 });
  expect(one.choices.map((c) => c.index)).toEqual([0, 1, 2]);
  for (let i = 0; i < prompts.length; i++) {
    const a = one.choices[i].logprobs!;
    const b = zero.choices[i].logprobs!;
    const L = prompts[i].length;
    expect(a.token_logprobs).toHaveLength(L + 1);
    expect(b.token_logprobs).toHaveLength(L);
    expect(a.token_logprobs!.slice(0, L)).toEqual(b.token_logprobs);
    // The generated token is the greedy one: its logprob is its own top-1.
    const last = a.top_logprobs![L]!;
    expect(Object.keys(last)).toEqual([a.tokens![L]]);
    expect(last[a.tokens![L]]).toBe(a.token_logprobs![L]);
    expect(one.choices[i].text).toBe(texts[i] + a.tokens![L]);
    expect(a.text_offset![L]).toBe(texts[i].length);
    const ref = referenceLogprobs([...prompts[i], (await tok.encode(a.tokens![L]))[0]]);
    expect(abs(a.token_logprobs![L]! - ref.lp[L - 1])).toBeLessThan(1e-4 * (1 + abs(ref.lp[L - 1])));
  }
}, 60_000);

test('logprobs 3 (read back on the host) agree with the batched scorer; generation logprobs are greedy', async () => {
  const prompt = 'It was a dark and stormy night';
  const k1 = await client.completions.create({ model: ck, prompt, max_tokens: 0, echo: true, logprobs: 1 });
  const k3 = await client.completions.create({ model: ck, prompt, max_tokens: 0, echo: true, logprobs: 3 });
  const a = k1.choices[0].logprobs!;
  const b = k3.choices[0].logprobs!;
  expect(b.tokens).toEqual(a.tokens);
  for (let i = 1; i < a.tokens!.length; i++) {
    expect(abs(b.token_logprobs![i]! - a.token_logprobs![i]!)).toBeLessThan(1e-4 * (1 + abs(a.token_logprobs![i]!)));
    const values = Object.values(b.top_logprobs![i]!);
    expect(values.length).toBeGreaterThanOrEqual(2);
    expect(values.length).toBeLessThanOrEqual(3);
    expect([...values].sort((x, y) => y - x)).toEqual(values);
    expect(abs(values[0] - Object.values(a.top_logprobs![i]!)[0])).toBeLessThan(1e-4 * (1 + abs(values[0])));
  }
  const g = await client.completions.create({ model: ck, prompt, max_tokens: 4, temperature: 0, logprobs: 2 });
  const lp = g.choices[0].logprobs!;
  expect(lp.tokens!.join('')).toBe(g.choices[0].text);
  lp.tokens!.forEach((t, i) => {
    const top = lp.top_logprobs![i]!;
    expect(Object.keys(top)[0]).toBe(t);
    expect(top[t]).toBe(lp.token_logprobs![i]);
    expect(lp.text_offset![i]).toBe(prompt.length + lp.tokens!.slice(0, i).join('').length);
  });
}, 60_000);

test('streaming: the chunks make the same text; usage last with include_usage', async () => {
  const prompt = 'In the beginning';
  const whole = await client.completions.create({ model: ck, prompt, max_tokens: 8, temperature: 0, echo: true });
  const stream = await client.completions.create({
    model: ck,
    prompt,
    max_tokens: 8,
    temperature: 0,
    echo: true,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let chunks = 0;
  let finish: string | null = null;
  let usage: unknown = null;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  expect(text).toBe(whole.choices[0].text);
  expect(chunks).toBeGreaterThan(3);
  expect(finish).toBe(whole.choices[0].finish_reason);
  expect(usage).toEqual(whole.usage);
}, 60_000);

test('stop sequences end the text before them', async () => {
  const prompt = 'The history of the city';
  const free = await client.completions.create({ model: ck, prompt, max_tokens: 12, temperature: 0 });
  const text = free.choices[0].text;
  expect(text.length).toBeGreaterThan(4);
  const stop = text.slice(3, 6);
  const cut = text.indexOf(stop);
  const r = await client.completions.create({ model: ck, prompt, max_tokens: 12, temperature: 0, stop: [stop, 'zzz'] });
  expect(r.choices[0].text).toBe(text.slice(0, cut));
  expect(r.choices[0].finish_reason).toBe('stop');
  // Streamed, the held-back tail never shows the stop sequence either.
  const s = await client.completions.create({ model: ck, prompt, max_tokens: 12, temperature: 0, stop, stream: true });
  let streamed = '';
  for await (const chunk of s) for (const c of chunk.choices) streamed += c.text;
  expect(streamed).toBe(text.slice(0, cut));
}, 60_000);

test('sampling: a seed repeats, top_p near 0 and top_k 1 are greedy', async () => {
  const base = { model: ck, prompt: 'Once upon a time', max_tokens: 8, temperature: 1.5 };
  const a = await client.completions.create({ ...base, seed: 5 });
  const b = await client.completions.create({ ...base, seed: 5 });
  const c = await client.completions.create({ ...base, seed: 6 });
  expect(a.choices[0].text).toBe(b.choices[0].text);
  expect(c.choices[0].text).not.toBe(a.choices[0].text);
  const greedy = await client.completions.create({ ...base, temperature: 0 });
  const nucleus = await client.completions.create({ ...base, top_p: 1e-9, seed: 9 });
  expect(nucleus.choices[0].text).toBe(greedy.choices[0].text);
  const topK = await post({ ...base, top_k: 1, seed: 9 });
  expect(topK.status).toBe(200);
  expect((topK.body.choices as { text: string }[])[0].text).toBe(greedy.choices[0].text);
}, 60_000);

describe('bad requests: an OpenAI error object with the right status', () => {
  const ok = { model: 'MODEL', prompt: 'hi', max_tokens: 1 };
  const cases: [string, unknown, number, RegExp, string | null][] = [
    ['unknown field', { ...ok, foo: 1 }, 400, /Unrecognized request argument supplied: foo/, 'foo'],
    ['max_tokens as a string', { ...ok, max_tokens: '5' }, 400, /max_tokens must be an integer ≥ 0, got "5"/, null],
    ['temperature out of range', { ...ok, temperature: 3 }, 400, /temperature must be a number in 0\.\.2/, null],
    ['logprobs above 5', { ...ok, logprobs: 6 }, 400, /logprobs must be an integer in 0\.\.5/, null],
    ['top_p 0', { ...ok, top_p: 0 }, 400, /top_p must be a number in \(0, 1\]/, null],
    ['an empty prompt list', { ...ok, prompt: [] }, 400, /prompt must be a string, a non-empty list/, null],
    ['an empty token list', { ...ok, prompt: [[1, 2], []] }, 400, /prompt\[1\] is an empty list/, null],
    ['a negative token id', { ...ok, prompt: [1, -2] }, 400, /prompt\[1\] is -2, not a token id/, null],
    ['mixed prompt kinds', { ...ok, prompt: ['a', 3] }, 400, /prompt mixes strings, token ids and lists/, null],
    ['a token outside the vocabulary', { ...ok, prompt: [1, 60000] }, 400, /token 60000 is outside/, null],
    ['no prompt', { model: 'MODEL' }, 400, /you must provide a prompt/, null],
    ['no model', { prompt: 'x' }, 400, /you must provide a model/, null],
    ['n 2', { ...ok, n: 2 }, 400, /n > 1 is not supported/, null],
    ['stop as a number', { ...ok, stop: 5 }, 400, /stop must be a string or a list/, null],
    ['stream_options without stream', { ...ok, stream_options: {} }, 400, /only allowed with stream/, null],
    ['an array body', [ok], 400, /must be a JSON object/, null],
    ['another model', { ...ok, model: 'gpt-4' }, 404, /The model `gpt-4` does not exist/, 'model_not_found'],
  ];
  test.each(cases)('%s', async (_name, body, status, message, code) => {
    const b = JSON.parse(JSON.stringify(body).replaceAll('"MODEL"', JSON.stringify(ck)));
    const r = await post(b);
    expect(r.status).toBe(status);
    const err = r.body.error as Record<string, unknown>;
    expect(Object.keys(err).sort()).toEqual(['code', 'message', 'param', 'type']);
    expect(err.type).toBe('invalid_request_error');
    expect(err.message).toMatch(message);
    if (code) expect([err.code, err.param]).toContain(code);
  });

  test('a prompt longer than the context (and echo with max_tokens 0 takes one more)', async () => {
    const long = Array.from({ length: 129 }, (_, i) => i + 100);
    const r = await post({ model: ck, prompt: long, max_tokens: 1 });
    expect(r.status).toBe(400);
    expect(r.body.error).toMatchObject({ code: 'context_length_exceeded', param: 'prompt' });
    expect((r.body.error as { message: string }).message).toMatch(/maximum context length is 128 tokens/);
    const fits = await post({ model: ck, prompt: long, max_tokens: 0, echo: true, logprobs: 1 });
    expect(fits.status).toBe(200);
    const gen = await post({ model: ck, prompt: long.slice(0, 100), max_tokens: 40 });
    expect(gen.status).toBe(400);
  }, 60_000);

  test('invalid JSON, wrong method, unknown URL', async () => {
    const bad = await post('{"model": ');
    expect(bad.status).toBe(400);
    expect(bad.body.error).toMatchObject({ code: 'invalid_json' });
    expect((await raw('/v1/completions')).status).toBe(405);
    expect((await raw('/v1/chat/completions', { method: 'POST', body: '{}' })).status).toBe(404);
    expect((await raw('/nope')).status).toBe(404);
  });

  test('the openai client sees a 400 as BadRequestError', async () => {
    await expect(client.completions.create({ model: ck, prompt: 'x', max_tokens: -1 })).rejects.toBeInstanceOf(
      OpenAI.BadRequestError,
    );
  });
});

test('--api-key is enforced on /v1/, and an over-large body is a 400', async () => {
  const s = await startServing(gpu, {
    model: ck,
    host: '127.0.0.1',
    port: 0,
    maxBatch: 2,
    apiKey: 'sesame',
    maxBodyBytes: 2000,
  });
  try {
    const base = `http://127.0.0.1:${s.server.address().port}`;
    const wrong = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'guess', maxRetries: 0 });
    await expect(wrong.models.list()).rejects.toBeInstanceOf(OpenAI.AuthenticationError);
    const none = await fetch(`${base}/v1/models`);
    expect(none.status).toBe(401);
    expect(((await none.json()) as { error: { code: string } }).error.code).toBe('invalid_api_key');
    const right = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'sesame', maxRetries: 0 });
    const r = await right.completions.create({ model: ck, prompt: 'Hello', max_tokens: 2, temperature: 0 });
    expect(r.choices[0].text.length).toBeGreaterThan(0);
    expect((await fetch(`${base}/health`)).status).toBe(200);
    const big = await fetch(`${base}/v1/completions`, {
      method: 'POST',
      headers: { Authorization: 'Bearer sesame', 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: ck, prompt: 'x'.repeat(5000) }),
    });
    expect(big.status).toBe(400);
    expect(((await big.json()) as { error: { code: string } }).error.code).toBe('request_too_large');
  } finally {
    await s.close();
  }
}, 60_000);

test('an encoder is refused with a clear 400', async () => {
  const enc: ModelConfig = { ...config, causal: false, vocab_size: 50258, mask_token_id: 50257 };
  const encDir = join(dir, 'encoder');
  await saveCheckpoint(encDir, {
    config: enc,
    params: initParams(enc, 1),
    tokenizerJson: tok.toJSON({ withMask: true }),
  });
  const s = await startServing(gpu, { model: encDir, host: '127.0.0.1', port: 0, maxBatch: 2 });
  try {
    const c = new OpenAI({ baseURL: `http://127.0.0.1:${s.server.address().port}/v1`, apiKey: 'x', maxRetries: 0 });
    const err = await c.completions.create({ model: encDir, prompt: 'Hello', max_tokens: 1 }).catch((e) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect(err.message).toMatch(/is an encoder \(masked LM, bidirectional attention\).*serve a decoder/);
    expect(err.code).toBe('model_not_supported');
  } finally {
    await s.close();
  }
}, 60_000);

test('50 LAMBADA passages: served log-likelihoods equal eval-lambada --log-samples within 1e-4', async () => {
  const out = join(dir, 'lm-eval');
  // In a child process that does not block this one's event loop (the server runs here).
  const r = await hlmAsync([
    'eval-lambada',
    '--model',
    ck,
    '--data',
    LAMBADA,
    '--limit',
    '50',
    '--output-path',
    out,
    '--log-samples',
  ]);
  if (r.status !== 0) throw new Error(r.stderr);
  const folder = join(out, readdirSync(out)[0]);
  const samplesFile = readdirSync(folder).find((f) => f.startsWith('samples_lambada_openai_'))!;
  const samples = readFileSync(join(folder, samplesFile), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { doc_id: number; perplexity: number; acc: number; target: string });
  expect(samples).toHaveLength(50);
  // lm-eval's local-completions: context_enc + continuation_enc as token ids, echo, max_tokens 1, logprobs 1;
  // the continuation's log-likelihood is the sum of token_logprobs[ctxlen:-1], greedy when each is its top-1.
  const passages = readLambada(LAMBADA, { limit: 50 });
  const reqs = await Promise.all(passages.map((p) => lambadaRequest(tok, p, config.n_positions)));
  const before = serving.engine!.stats.batches;
  const groups = Array.from({ length: 10 }, (_, g) => reqs.slice(5 * g, 5 * g + 5));
  const responses = await Promise.all(
    groups.map((g) =>
      client.completions.create({
        model: ck,
        prompt: g.map((q) => [...q.input, q.targetTokens[q.targetTokens.length - 1]]),
        max_tokens: 1,
        temperature: 0,
        logprobs: 1,
        echo: true,
        seed: 1234,
      }),
    ),
  );
  const batches = serving.engine!.stats.batches - before;
  expect(batches).toBeLessThanOrEqual(10); // 50 prompts, up to 8 a pass: batched across requests
  let worst = 0;
  let agree = 0;
  responses.forEach((resp, g) =>
    resp.choices.forEach((c, j) => {
      const q = groups[g][j];
      const s = samples[q.index];
      const ctxlen = q.input.length + 1 - q.targetTokens.length;
      const lps = c.logprobs!.token_logprobs!.slice(ctxlen, -1) as number[];
      const tops = c.logprobs!.top_logprobs!.slice(ctxlen, -1) as Record<string, number>[];
      const ll = lps.reduce((x, y) => x + y, 0);
      const greedy = lps.every((v, k) => v === Math.max(...Object.values(tops[k])));
      expect(s.target).toBe(splitLambada(passages[q.index].text).target);
      worst = Math.max(worst, abs(ll - s.perplexity) / abs(s.perplexity));
      if (Number(greedy) === s.acc) agree++;
    }),
  );
  console.log(
    `serve vs eval-lambada, 50 passages: worst relative difference ${worst.toExponential(2)}, ${batches} passes`,
  );
  expect(!(worst <= 1e-4)).toBe(false);
  expect(agree).toBe(50);
}, 180_000);

test('load: 8 concurrent clients × 50 log-likelihood requests, no errors', async () => {
  const words = 'the of and a in to is was he for it with as his on be at by had are'.split(' ');
  let seed = 11;
  const rand = () => (seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648;
  const prompt = () =>
    Array.from({ length: 6 + Math.floor(rand() * 9) }, () => words[Math.floor(rand() * 20)]).join(' ');
  const latencies: number[] = [];
  let tokens = 0;
  let errors = 0;
  const before = { ...serving.engine!.stats };
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: 8 }, async () => {
      for (let i = 0; i < 50; i++) {
        const t = performance.now();
        try {
          const r = await client.completions.create({
            model: ck,
            prompt: prompt(),
            max_tokens: 1,
            temperature: 0,
            logprobs: 1,
            echo: true,
          });
          tokens += r.usage!.prompt_tokens;
        } catch {
          errors++;
        }
        latencies.push(performance.now() - t);
      }
    }),
  );
  const seconds = (performance.now() - t0) / 1000;
  latencies.sort((a, b) => a - b);
  const q = (p: number) => latencies[Math.min(latencies.length - 1, Math.floor(p * latencies.length))];
  const passes = serving.engine!.stats.batches - before.batches;
  console.log(
    `load (8 clients x 50 echo requests, ${tokens} prompt tokens, ${passes} passes): ${errors} errors, p50 ` +
      `${q(0.5).toFixed(0)} ms, p99 ${q(0.99).toFixed(0)} ms, ${(tokens / seconds).toFixed(0)} prompt tokens/s, ` +
      `${(400 / seconds).toFixed(1)} requests/s over ${seconds.toFixed(1)} s`,
  );
  expect(errors).toBe(0);
  expect(latencies).toHaveLength(400);
  expect(passes).toBeLessThan(400); // concurrent requests shared passes
}, 600_000);

test('SIGTERM: the request in flight completes, then the server exits 0', async () => {
  const { child, out, exited } = spawnHlm(['serve', '--model', ck, '--port', '0']);
  const base = await new Promise<string>((resolve, reject) => {
    const timer = setInterval(() => {
      const m = /on (http:\/\/127\.0\.0\.1:\d+)\/v1/.exec(out.stdout);
      if (m) {
        clearInterval(timer);
        resolve(m[1]);
      }
    }, 50);
    void exited.then(() => reject(new Error(`serve exited: ${out.stderr}`)));
  });
  const c = new OpenAI({ baseURL: `${base}/v1`, apiKey: 'x', maxRetries: 0 });
  // A slow request: logits read back every step for the top 5.
  const inFlight = c.completions.create({ model: ck, prompt: 'Hello', max_tokens: 60, temperature: 0, logprobs: 5 });
  await new Promise((r) => setTimeout(r, 300));
  child.kill('SIGTERM');
  const r = await inFlight;
  expect(r.choices[0].logprobs!.tokens!.length).toBe(r.usage!.completion_tokens);
  expect(r.usage!.completion_tokens).toBeGreaterThan(0);
  expect(await exited).toBe(0);
  await expect(fetch(`${base}/health`)).rejects.toThrow();
}, 120_000);
