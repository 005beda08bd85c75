// --save-dtype f16 from the command line: pretrain, compare-objectives and finetune-glue write F16 weights, which
// generate, eval-lambada and finetune-glue --predict load and use exactly as float32 weights of the same values;
// a bad value is one `hlm:` line and writes nothing.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hlm } from './helpers/cli.js';
import { tinyRun } from './helpers/tiny-run.js';
import { loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.js';
import { parseSafetensors } from '../src/model/safetensors.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { initParams } from '../src/model/params.js';

const LAMBADA = '/work/shared/data/lambada/lambada_test_sample200.jsonl';
let dir: string;
let env: Record<string, string>;
let tokenizer: string;
let model: string[];
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-save-dtype-cli-'));
  env = { HLM_CACHE_DIR: join(dir, 'cache') };
  ({ tokenizer, model } = tinyRun(dir, env));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const dtypes = (ck: string) =>
  new Set([...parseSafetensors(readFileSync(join(ck, 'model.safetensors')), ck).tensors.values()].map((t) => t.dtype));
const ok = (r: { status: number | null; stderr: string }) => {
  if (r.status !== 0) throw new Error(r.stderr);
};
const oneError = (r: { status: number | null; stderr: string }, message: RegExp) => {
  expect(r.status).not.toBe(0);
  const lines = r.stderr.split('\n').filter((l) => l.startsWith('hlm: '));
  expect(lines).toHaveLength(1);
  expect(lines[0]).toMatch(message);
};

/** An f32 checkpoint holding exactly the values inference reads from `ck`. */
async function f32Twin(ck: string, to: string): Promise<string> {
  const c = await loadCheckpoint(ck, { optimizer: false });
  await saveCheckpoint(to, { config: c.config, params: c.params, tokenizerJson: c.tokenizerJson, hlm: c.hlm });
  return to;
}

test('pretrain --save-dtype f16: generate and eval-lambada load it and match the same values in f32', async () => {
  const out = join(dir, 'f16');
  ok(hlm(['pretrain', ...model, '--tokenizer', tokenizer, '--steps', '2', '--out', out, '--save-dtype', 'f16'], env));
  const ck = join(out, 'checkpoint');
  expect(dtypes(ck)).toEqual(new Set(['F16']));
  const twin = await f32Twin(ck, join(dir, 'twin'));
  expect(dtypes(twin)).toEqual(new Set(['F32']));
  const gen = (m: string) =>
    hlm(['generate', '--model', m, '--prompt', 'The history of', '--max-tokens', '6', '--temperature', '0', '--json']);
  const [g16, g32] = [gen(ck), gen(twin)];
  ok(g16);
  expect(JSON.parse(g16.stdout).tokens).toHaveLength(6);
  expect(JSON.parse(g16.stdout).tokens).toEqual(JSON.parse(g32.stdout).tokens);
  const lambada = (m: string) => {
    const r = hlm(['eval-lambada', '--model', m, '--data', LAMBADA, '--limit', '3', '--json'], env);
    ok(r);
    const { accuracy, perplexity, n } = JSON.parse(r.stdout);
    return { accuracy, perplexity, n };
  };
  const l16 = lambada(ck);
  expect(l16.n).toBe(3);
  expect(Number.isFinite(l16.perplexity)).toBe(true);
  expect(l16).toEqual(lambada(twin));
}, 300_000);

test('compare-objectives --save-dtype f16 saves both models in F16', () => {
  const out = join(dir, 'compare');
  ok(
    hlm(
      ['compare-objectives', ...model, '--tokenizer', tokenizer, '--steps', '1', '--out', out, '--save-dtype', 'f16'],
      env,
    ),
  );
  for (const o of ['ce', 'cwt']) expect(dtypes(join(out, o, 'checkpoint'))).toEqual(new Set(['F16']));
}, 300_000);

test('a bad --save-dtype (flag or --set) is one hlm: line and writes nothing', () => {
  const out = join(dir, 'bad');
  oneError(hlm(['pretrain', '--save-dtype', 'bf16', '--out', out], env), /--save-dtype.*f32, f16/);
  oneError(hlm(['pretrain', '--set', 'save_dtype=bf16', '--out', out], env), /save_dtype must be one of f32\|f16/);
  expect(existsSync(out)).toBe(false);
  oneError(
    hlm(['finetune-glue', '--model', out, '--task', 'xnli', '--data', out, '--save-dtype', 'f16']),
    /--save-dtype is for GLUE tasks: --task xnli saves no model/,
  );
});

test('finetune-glue --save-dtype f16 saves the classifier in F16, and --predict reads it', async () => {
  const glue = join(dir, 'glue', 'SST-2');
  mkdirSync(glue, { recursive: true });
  const rows = (n: number) =>
    'sentence\tlabel\n' +
    Array.from({ length: n }, (_, i) => `the film was ${i % 2 ? 'wonderful' : 'terrible'} ${i}\t${i % 2}`).join('\n');
  writeFileSync(join(glue, 'train.tsv'), rows(16) + '\n');
  writeFileSync(join(glue, 'dev.tsv'), rows(6) + '\n');
  const config: ModelConfig = { ...preset('tiny'), n_positions: 24, n_embd: 16, n_layer: 1, n_head: 2 };
  await saveCheckpoint(join(dir, 'base'), {
    config: { ...config, eos_token_id: 50256 },
    params: initParams(config, 3),
  });
  const out = join(dir, 'glue-runs');
  const common = ['--task', 'sst2', '--device', 'cpu'];
  const args = ['--model', join(dir, 'base'), ...common, '--data', join(dir, 'glue'), '--epochs', '1', '--seeds', '1'];
  ok(hlm(['finetune-glue', ...args, '--out', out, '--save-dtype', 'f16'], {}, 300_000));
  const ck = join(out, 'sst2', 'checkpoint');
  expect(dtypes(ck)).toEqual(new Set(['F16']));
  expect(existsSync(join(ck, 'optimizer.safetensors'))).toBe(false);
  const twin = await f32Twin(ck, join(dir, 'glue-twin'));
  const predict = (m: string) => {
    const r = hlm(['finetune-glue', '--model', m, ...common, '--predict', join(glue, 'dev.tsv')]);
    ok(r);
    return r.stdout;
  };
  const p16 = predict(ck);
  expect(p16.trim().split('\n')).toHaveLength(6);
  expect(p16).toBe(predict(twin));
}, 300_000);
