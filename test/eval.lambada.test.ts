// hlm eval-lambada: the lambada_openai split, both readers and their errors, the token-level
// requests, batched GPU scoring against the float64 reference GPT-2, the aggregation, and
// the command on CE and CWT checkpoints.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTestGpu } from './helpers/gpu.js';
import { hlm } from './helpers/cli.js';
import type { Gpu } from '../src/gpu/device.js';
import {
  aggregateLambada,
  lambadaFormatOf,
  lambadaRequest,
  parseLambadaJsonl,
  parseLambadaText,
  readLambada,
  splitLambada,
  type LambadaRequest,
} from '../src/eval/lambada.js';
import { chooseBatchShape, scoreRequests } from '../src/eval/score.js';
import { evalLambada } from '../src/eval/evaluate.js';
import { loadTokenizer, type Tokenizer } from '../src/data/tokenizer.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';
import { gpt2Forward } from '../src/reference/gpt2.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { initParams, paramLayout } from '../src/model/params.js';
import { HlmError } from '../src/errors.js';

const exp = Math.exp;
const abs = Math.abs;
const SAMPLE = '/work/shared/data/lambada/lambada_test_sample200.jsonl';
const PLAIN = '/work/shared/data/lambada/lambada_development_plain_text.txt';

let gpu: Gpu;
let dir: string;
let tok: Tokenizer;
beforeAll(async () => {
  gpu = await openTestGpu();
  dir = mkdtempSync(join(tmpdir(), 'hlm-lambada-'));
  tok = await loadTokenizer('gpt2');
});
afterAll(() => {
  gpu?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

describe('the lambada_openai split', () => {
  test.each([
    ['he said to the dog', 'he said to the', ' dog'],
    // quotes and punctuation stay attached to the last word
    ['"I don\'t care about signs."', '"I don\'t care about', ' signs."'],
    ["`` nineteen , '' she said , and told he", "`` nineteen , '' she said , and told", ' he'],
    ['she whispered, "Harlin!"', 'she whispered,', ' "Harlin!"'],
    // a trailing space: the harness's split(' ') gives an empty last word, target " "
    ['the end ', 'the end', ' '],
    // two spaces before the last word: the context keeps one of them
    ['over  there', 'over ', ' there'],
    // only U+0020 splits: tab, newline and no-break space are text
    ['line one\nline\ttwo\u00a0three', 'line', ' one\nline\ttwo\u00a0three'],
    // Unicode words, combining marks and astral characters are plain text
    ['Zoë met the naïve café owner 😀', 'Zoë met the naïve café owner', ' 😀'],
    ['das ist schön', 'das ist', ' schön'],
    [' leading', '', ' leading'],
  ])('%j', (text, context, target) => {
    expect(splitLambada(text)).toEqual({ context, target });
    expect(context + target).toBe(text);
  });

  test('a passage without a space is an error naming where it is', () => {
    expect(() => splitLambada('nospace', 'data.jsonl:7')).toThrow(/data\.jsonl:7: the passage has no space/);
  });
});

describe('readers', () => {
  test('JSONL: one {"text"} per line, blank lines skipped, CRLF accepted, lines remembered', () => {
    const ps = parseLambadaJsonl('{"text": "a b"}\r\n\n{"text": "c \\"d\\" e", "id": 3}\n', 'f.jsonl');
    expect(ps).toEqual([
      { index: 0, line: 1, text: 'a b', doc: { text: 'a b' } },
      { index: 1, line: 3, text: 'c "d" e', doc: { text: 'c "d" e', id: 3 } },
    ]);
  });

  test.each([
    ['{"text": "a b"}\n{"text": "broken\n', /f\.jsonl:2: not valid JSON/],
    ['{"text": "a b"}\n{"txt": "a b"}\n', /f\.jsonl:2: expected an object with a string "text"/],
    ['{"text": 5}\n', /f\.jsonl:1: expected an object with a string "text"/],
    ['["a b"]\n', /f\.jsonl:1: expected an object/],
    ['null\n', /f\.jsonl:1: expected an object/],
  ])('JSONL error %#', (content, message) => {
    const path = join(dir, 'f.jsonl');
    writeFileSync(path, content);
    expect(() => readLambada(path)).toThrow(HlmError);
    expect(() => readLambada(path)).toThrow(message);
  });

  test('a passage with no space names its file and line', () => {
    const jsonl = join(dir, 'nospace.jsonl');
    writeFileSync(jsonl, '{"text": "a b"}\n{"text": "word"}\n');
    expect(() => readLambada(jsonl)).toThrow(`${jsonl}:2: the passage has no space`);
    const txt = join(dir, 'nospace.txt');
    writeFileSync(txt, 'a b\n\nlonely\n');
    expect(() => readLambada(txt)).toThrow(`${txt}:3: the passage has no space`);
  });

  test('plain text: one passage a line', () => {
    expect(parseLambadaText('x y\r\n\nz w \n', 'f.txt')).toEqual([
      { index: 0, line: 1, text: 'x y' },
      { index: 1, line: 3, text: 'z w ' },
    ]);
    expect(lambadaFormatOf('a/b.jsonl')).toBe('jsonl');
    expect(lambadaFormatOf('a/b.txt')).toBe('text');
  });

  test('both shipped files read', () => {
    const j = readLambada(SAMPLE);
    expect(j.length).toBe(200);
    expect(splitLambada(j[0].text).target).toBe(' signs');
    const t = readLambada(PLAIN, { limit: 50 });
    expect(t.length).toBe(50);
    expect(splitLambada(t[0].text).target).toBe(' cake');
    expect(readLambada(PLAIN).length).toBe(4869);
  });
});

describe('requests', () => {
  test('context and target encoded separately; input = (ctx + target)[:-1]', async () => {
    const r = await lambadaRequest(tok, { index: 0, text: 'The cat sat on the mat' }, 1024);
    const ctx = await tok.encode('The cat sat on the');
    const tgt = await tok.encode(' mat');
    expect(r.targetTokens).toEqual(tgt);
    expect(r.input).toEqual([...ctx, ...tgt].slice(0, -1));
  });

  test('cut from the left to n_positions', async () => {
    const text = 'one two three four five six seven eight nine ten eleven twelve';
    const whole = [...(await tok.encode(text.slice(0, text.lastIndexOf(' ')))), ...(await tok.encode(' twelve'))];
    const r = await lambadaRequest(tok, { index: 0, text }, 5);
    expect(r.input).toEqual(whole.slice(whole.length - 6, whole.length - 1));
    expect(r.input.length).toBe(5);
  });

  test('an empty context is the end-of-text token', async () => {
    const r = await lambadaRequest(tok, { index: 0, text: ' hello' }, 16);
    expect(r.input).toEqual([tok.eotId, ...(await tok.encode(' hello'))].slice(0, -1));
  });

  test('batch shape: T = longest input, B from the token budget or the option', () => {
    const reqs = [{ input: [1, 2, 3] }, { input: [1] }].map((r, i) => ({
      ...r,
      index: i,
      context: '',
      target: '',
      targetTokens: [1],
    }));
    expect(chooseBatchShape(reqs, 8)).toEqual({ B: 2, T: 3 });
    expect(chooseBatchShape(reqs, 8, 1)).toEqual({ B: 1, T: 3 });
    expect(() => chooseBatchShape(reqs, 2)).toThrow(/exceeds n_positions/);
  });
});

test('aggregation: accuracy = mean greedy, perplexity = exp(−mean log-likelihood)', () => {
  const scores = [
    { logLikelihood: -1.5, greedy: true },
    { logLikelihood: -3.25, greedy: false },
    { logLikelihood: -0.25, greedy: true },
    { logLikelihood: -7, greedy: false },
  ];
  const m = aggregateLambada(scores);
  expect(m.n).toBe(4);
  expect(m.accuracy).toBe(0.5);
  expect(abs(m.perplexity - exp((1.5 + 3.25 + 0.25 + 7) / 4))).toBeLessThan(1e-12);
  expect(() => aggregateLambada([])).toThrow(/no passages/);
});

// A tiny random decoder with GPT-2's vocabulary; the embeddings scaled up so the argmax is clear.
const SMALL = { n_layer: 2, n_embd: 16, n_head: 2, n_positions: 24 };
function tinyModel(seed: number, extra: Partial<ModelConfig> = {}): { config: ModelConfig; params: Float32Array } {
  const config: ModelConfig = { ...preset('tiny'), ...SMALL, eos_token_id: 50256, ...extra };
  const layout = paramLayout(config);
  const params = initParams(config, seed);
  const wte = layout.tensors.find((t) => t.name === 'transformer.wte.weight')!;
  for (let i = wte.offset; i < wte.offset + wte.size; i++) params[i] *= 40;
  return { config, params };
}

function reference(config: ModelConfig, params: Float32Array, r: LambadaRequest) {
  const layout = paramLayout(config);
  const rec: Record<string, Float64Array> = {};
  for (const t of layout.tensors) rec[t.name] = Float64Array.from(params.subarray(t.offset, t.offset + t.size));
  const T = r.input.length;
  const V = config.vocab_size;
  const lp = gpt2Forward(rec, config, r.input, 1, T, { logProbs: true }).logProbs!;
  let ll = 0;
  let greedy = true;
  const argmax: number[] = [];
  const margins: number[] = [];
  r.targetTokens.forEach((tgt, j) => {
    const row = (T - r.targetTokens.length + j) * V;
    ll += lp[row + tgt];
    let best = 0;
    let second = -Infinity;
    for (let v = 1; v < V; v++) {
      const x = lp[row + v];
      if (x > lp[row + best]) {
        second = lp[row + best];
        best = v;
      } else if (x > second) second = x;
    }
    argmax.push(best);
    margins.push(lp[row + best] - second);
    if (best !== tgt) greedy = false;
  });
  return { ll, greedy, argmax, margins };
}

test('GPU scores equal the float64 reference per passage (batched, padded, left-cut)', async () => {
  const { config, params } = tinyModel(11);
  const passages = readLambada(SAMPLE, { limit: 5 });
  const reqs: LambadaRequest[] = [];
  for (const p of passages) reqs.push(await lambadaRequest(tok, p, config.n_positions));
  reqs.push(await lambadaRequest(tok, { index: 5, text: 'a short one' }, config.n_positions));
  // A passage the model gets right by construction: its target is the reference argmax.
  const ctx = await tok.encode('It was a dark and stormy');
  const guess = reference(config, params, { index: 6, context: '', target: '', input: ctx, targetTokens: [0] });
  const right: LambadaRequest = { index: 6, context: '', target: '', input: ctx, targetTokens: [guess.argmax[0]] };
  reqs.push(right);
  expect(reqs.some((r) => r.input.length === config.n_positions)).toBe(true); // some were cut
  const { scores, B, T } = await scoreRequests(gpu, config, params, reqs, { batchSize: 3 });
  expect([B, T]).toEqual([3, config.n_positions]);
  expect(scores.map((s) => s.index)).toEqual(reqs.map((r) => r.index));
  let greedyCount = 0;
  reqs.forEach((r, i) => {
    const ref = reference(config, params, r);
    const s = scores[i];
    expect(Number.isFinite(s.logLikelihood)).toBe(true);
    expect(abs(s.logLikelihood - ref.ll)).toBeLessThan(1e-4 * (1 + abs(ref.ll)));
    ref.argmax.forEach((a, j) => {
      if (ref.margins[j] > 1e-3) expect(s.predicted[j]).toBe(a);
    });
    if (ref.margins.every((m) => m > 1e-3)) expect(s.greedy).toBe(ref.greedy);
    if (s.greedy) greedyCount++;
  });
  expect(scores[scores.length - 1].greedy).toBe(true);
  expect(greedyCount).toBeGreaterThanOrEqual(1);
  expect(scores.slice(0, -1).some((s) => !s.greedy)).toBe(true);
  // The same scores whatever the batch size (padding and batching change nothing).
  const one = await scoreRequests(gpu, config, params, reqs, { batchSize: 7 });
  one.scores.forEach((s, i) =>
    expect(abs(s.logLikelihood - scores[i].logLikelihood)).toBeLessThan(1e-4 * (1 + abs(s.logLikelihood))),
  );
}, 120_000);

test('evalLambada on a checkpoint: metrics aggregate the per-passage scores', async () => {
  const { config, params } = tinyModel(5);
  const ck = join(dir, 'ck-inproc');
  await saveCheckpoint(ck, { config, params });
  const r = await evalLambada(gpu, { model: ck, data: SAMPLE, limit: 6, batchSize: 4 });
  expect(r.n).toBe(6);
  expect(r.predictions.length).toBe(6);
  const mean = r.predictions.reduce((a, p) => a + p.logLikelihood, 0) / 6;
  expect(abs(r.perplexity - exp(-mean)) / r.perplexity).toBeLessThan(1e-9);
  expect(r.accuracy).toBe(r.predictions.filter((p) => p.correct).length / 6);
  expect(r.passagesPerSecond).toBeGreaterThan(0);
  expect(r.predictions[0].target).toBe(' signs');
}, 120_000);

describe('the command', () => {
  const run = async (objective: 'ce' | 'cwt') => {
    const { config, params } = tinyModel(objective === 'ce' ? 1 : 2, { objective });
    const ck = join(dir, `ck-${objective}`);
    await saveCheckpoint(ck, { config, params });
    const preds = join(dir, `preds-${objective}.jsonl`);
    const r = hlm(['eval-lambada', '--model', ck, '--data', SAMPLE, '--limit', '10', '--json', '--predictions', preds]);
    expect(r.stderr).not.toMatch(/Error/);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.n).toBe(10);
    expect(out.objective).toBe(objective);
    expect(out.accuracy).toBeGreaterThanOrEqual(0);
    expect(out.accuracy).toBeLessThanOrEqual(1);
    expect(Number.isFinite(out.perplexity) && out.perplexity > 1).toBe(true);
    expect(out.passagesPerSecond).toBeGreaterThan(0);
    const lines = readFileSync(preds, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
    expect(lines.length).toBe(10);
    expect(Object.keys(lines[0])).toEqual(
      expect.arrayContaining(['index', 'target', 'predicted', 'logLikelihood', 'correct']),
    );
    const mean = lines.reduce((a: number, p: { logLikelihood: number }) => a + p.logLikelihood, 0) / 10;
    expect(abs(out.perplexity - exp(-mean)) / out.perplexity).toBeLessThan(1e-9);
    expect(out.accuracy).toBe(lines.filter((p: { correct: boolean }) => p.correct).length / 10);
  };
  test('a CE checkpoint', () => run('ce'), 120_000);
  test('a CWT checkpoint (scored with the tied embeddings)', () => run('cwt'), 120_000);

  test('with stderr not a terminal, progress is a log line every --log-every batches', () => {
    const args = ['eval-lambada', '--model', join(dir, 'ck-ce'), '--data', SAMPLE, '--limit', '10'];
    const r = hlm([...args, '--batch-size', '3', '--log-every', '2'], { HLM_LOG_LEVEL: 'info' });
    expect(r.status).toBe(0);
    const progress = r.stderr
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l) as { msg: string; done?: number })
      .filter((l) => /^lambada: \d+\/10 passages {2}\d+\.\d passages\/s {2}ETA \d+s$/.test(l.msg));
    expect(progress.map((l) => l.done)).toEqual([6, 10]); // batches of 3: every second one, and the last
    expect(r.stdout).toMatch(/^lambada_openai on 10 passages/);
  }, 60_000);

  test('a checkpoint without its tokenizer is refused clearly', async () => {
    const config: ModelConfig = { ...preset('tiny'), ...SMALL, vocab_size: 300 };
    const ck = join(dir, 'ck-notok');
    await saveCheckpoint(ck, { config, params: initParams(config, 1) });
    const r = hlm(['eval-lambada', '--model', ck, '--data', SAMPLE, '--limit', '2']);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toMatch(/vocab_size 300 and no tokenizer\.json/);
  }, 60_000);

  test('a bad data line is refused with its file and line', async () => {
    const bad = join(dir, 'bad.jsonl');
    writeFileSync(bad, '{"text": "a b"}\n{oops}\n');
    const r = hlm(['eval-lambada', '--model', join(dir, 'ck-ce'), '--data', bad]);
    expect(r.status).not.toBe(0);
    expect(r.stderr).toContain(`${bad}:2: not valid JSON`);
  }, 60_000);
});
