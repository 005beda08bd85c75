// hlm generate as a user runs it: text streamed to stdout (prompt from --prompt or stdin),
// --json's result object, the same tokens with and without the KV cache, and one clear
// `hlm: ...` line for each refusal.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hlm, repoRoot } from './helpers/cli.js';
import { loadTokenizer } from '../src/data/tokenizer.js';
import { TextStream } from '../src/infer/text.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { initParams, paramLayout } from '../src/model/params.js';
import { saveCheckpoint } from '../src/model/checkpoint.js';

let dir: string;
const SMALL = { n_layer: 2, n_embd: 16, n_head: 2, n_positions: 24, eos_token_id: 50256 };

/** A tiny random GPT-2-vocabulary model; embeddings scaled up so its choices are not all ties. */
async function checkpoint(name: string, extra: Partial<ModelConfig> = {}): Promise<string> {
  const config: ModelConfig = { ...preset('tiny'), ...SMALL, ...extra };
  const params = initParams(config, 3);
  const wte = paramLayout(config).byName.get('transformer.wte.weight')!;
  for (let i = wte.offset; i < wte.offset + wte.size; i++) params[i] *= 40;
  const ck = join(dir, name);
  await saveCheckpoint(ck, { config, params });
  return ck;
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-generate-'));
  await checkpoint('ce');
  await checkpoint('cwt', { objective: 'cwt' });
  await checkpoint('encoder', { causal: false, vocab_size: 50258, mask_token_id: 50257 });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const expectOneErrorLine = (r: { status: number | null; stderr: string }, message: RegExp) => {
  expect(r.status).not.toBe(0);
  const lines = r.stderr
    .trim()
    .split('\n')
    .filter((l) => l.startsWith('hlm: '));
  expect(lines.length).toBe(1);
  expect(lines[0]).toMatch(message);
  expect(r.stderr).not.toMatch(/at .*\.[jt]s:\d+/); // no stack trace
};

test('streams text to stdout; --json gives the same text and tokens; --no-kv-cache agrees', () => {
  const ck = join(dir, 'ce');
  const args = ['generate', '--model', ck, '--prompt', 'The history of', '--max-tokens', '12', '--temperature', '0'];
  const text = hlm(args);
  expect(text.stderr).not.toMatch(/Error/);
  expect(text.status).toBe(0);
  expect(text.stdout.length).toBeGreaterThan(1);
  const json = hlm([...args, '--json']);
  expect(json.status).toBe(0);
  const out = JSON.parse(json.stdout);
  expect(out.tokens.length).toBe(12);
  expect(out.stop).toBe('max-tokens');
  expect(text.stdout).toBe(out.text + '\n');
  expect(out).toMatchObject({
    prompt: 'The history of',
    temperature: 0,
    cache: true,
    objective: 'ce',
    head: 'transformer.wte.weight',
    tokenizer: 'gpt2',
  });
  expect(out.promptTokens.length).toBe(3);
  expect(out.prefillTokensPerSecond).toBeGreaterThan(0);
  expect(out.decodeTokensPerSecond).toBeGreaterThan(0);
  expect(out.timeToFirstToken).toBeGreaterThan(0);
  const slow = JSON.parse(hlm([...args, '--json', '--no-kv-cache']).stdout);
  expect(slow.cache).toBe(false);
  expect(slow.tokens).toEqual(out.tokens);
}, 120_000);

test(
  'reads the prompt from stdin; sampling with a seed repeats; a CWT checkpoint decodes ' + 'through its embeddings',
  () => {
    const run = (seed: number) => {
      const r = spawnSync(
        process.execPath,
        [
          join(repoRoot(), 'bin/run.js'),
          'generate',
          '--model',
          join(dir, 'cwt'),
          '--max-tokens',
          '10',
          '--temperature',
          '0.9',
          '--top-k',
          '20',
          '--seed',
          String(seed),
          '--json',
        ],
        {
          cwd: repoRoot(),
          env: { ...process.env, HLM_LOG_LEVEL: 'warn' },
          encoding: 'utf8',
          input: 'Once upon a time',
          timeout: 120_000,
        },
      );
      expect(r.stderr).not.toMatch(/Error/);
      expect(r.status).toBe(0);
      return JSON.parse(r.stdout);
    };
    const a = run(5);
    expect(a.prompt).toBe('Once upon a time');
    expect(a.objective).toBe('cwt');
    expect(a.head).toBe('transformer.wte.weight');
    expect(a.tokens.length).toBe(10);
    expect(run(5).tokens).toEqual(a.tokens);
  },
  120_000,
);

test('a full context stops with a note on stderr, not a crash', () => {
  // n_positions 24: a prompt of 20 tokens leaves room for 5 generated ones.
  const r = hlm(
    [
      'generate',
      '--model',
      join(dir, 'ce'),
      '--prompt',
      'a b c d e f g h i j k l m n o p q r s t',
      '--max-tokens',
      '50',
      '--temperature',
      '0',
      '--json',
    ],
    { HLM_LOG_LEVEL: 'info' },
  );
  expect(r.status).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out.promptTokens.length).toBe(20);
  expect(out.stop).toBe('context');
  expect(out.tokens.length).toBe(5);
  expect(r.stderr).toMatch(/context of 24 tokens is full/);
}, 120_000);

test.each([
  [
    'a missing checkpoint',
    ['--model', '/nonexistent/ck', '--prompt', 'x'],
    /hlm: checkpoint directory \/nonexistent\/ck does not exist/,
  ],
  [
    'an encoder',
    ['--model', 'ENC', '--prompt', 'x'],
    /hlm: .* is an encoder checkpoint \(causal: false\): it cannot generate text/,
  ],
  [
    'a prompt past n_positions',
    [
      '--model',
      'CE',
      '--prompt',
      'one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen ' +
        'eighteen nineteen twenty twenty-one twenty-two twenty-three twenty-four twenty-five',
    ],
    /hlm: the prompt is \d+ tokens long; this model's context \(n_positions\) is 24/,
  ],
  [
    'a negative temperature',
    ['--model', 'CE', '--prompt', 'x', '--temperature', '-1'],
    /hlm: --temperature must be a number ≥ 0/,
  ],
])(
  'refuses %s with one clear line',
  (_, args, message) => {
    const r = hlm([
      'generate',
      ...args.map((a) => (a === 'ENC' ? join(dir, 'encoder') : a === 'CE' ? join(dir, 'ce') : a)),
    ]);
    expectOneErrorLine(r, message);
  },
  120_000,
);

test('TextStream holds back a split character until it is complete', async () => {
  const tok = await loadTokenizer('gpt2');
  const ids = await tok.encode('naïve 😀 café');
  const stream = new TextStream(tok);
  let shown = '';
  let held = 0;
  for (const id of ids) {
    const piece = await stream.push(id);
    expect(piece).not.toContain('\uFFFD');
    if (!piece) held++;
    shown += piece;
  }
  shown += await stream.flush();
  expect(shown).toBe('naïve 😀 café');
  expect(held).toBeGreaterThan(0); // the emoji spans several byte tokens
});
