// Pretrain settings declared once: every value passes the same checks whether it comes from a flag, --set, a config
// file or a caller, with a message naming its source; the precedence --set > typed flags > file > defaults; the
// flags of pretrain and compare-objectives built from the table; one-line errors from every command's number flags;
// and a run repeated bit for bit from its run.json through the CLI.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hlm } from './helpers/cli.js';
import { pretrainOptions } from '../src/cli/pretrain-flags.js';
import { numberFromFlag } from '../src/cli/flags.js';
import { describeField } from '../src/model/overrides.js';
import { resolveSettings, RUN_SCHEMA, type PretrainOptions } from '../src/train/pretrain.js';
import { PRETRAIN_SETTINGS, TRAINING_KEYS, flagName, pretrainSettings } from '../src/train/pretrain-settings.js';
import Pretrain from '../src/commands/pretrain.js';
import CompareObjectives from '../src/commands/compare-objectives.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-settings-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The options `hlm pretrain` passes with no flag typed: the table's defaults. */
function defaults(o: Partial<PretrainOptions> = {}): PretrainOptions {
  const flags = Object.fromEntries(Object.entries(Pretrain.flags).map(([k, f]) => [k, f.default]));
  return { ...pretrainOptions(flags), ...o };
}

function configFile(name: string, json: unknown): string {
  const p = join(dir, name);
  writeFileSync(p, JSON.stringify(json));
  return p;
}

test('--set, a config file and a caller meet the same checks, each named in the message', async () => {
  const set = (...s: string[]) => resolveSettings(defaults({ set: s }));
  await expect(set('warmup=-3')).rejects.toThrow(/^--set warmup=-3: warmup must be a non-negative integer$/);
  await expect(set('save_every=-1')).rejects.toThrow(
    /^--set save_every=-1: save_every must be a non-negative integer$/,
  );
  await expect(set('lr=-1')).rejects.toThrow(/^--set lr=-1: lr must be a number ≥ 0$/);
  await expect(set('steps=0')).rejects.toThrow(/^--set steps=0: steps must be a positive integer$/);
  await expect(set('cwt_temperature=0')).rejects.toThrow(/cwt_temperature must be a positive number/);
  await expect(set('optimizer=adam')).rejects.toThrow(/^--set optimizer=adam: optimizer must be one of adamw\|sgd$/);
  await expect(set('n_layer=0')).rejects.toThrow(/^--set n_layer=0: n_layer must be a positive integer$/);
  await expect(set('layer_norm_epsilon=0')).rejects.toThrow(/layer_norm_epsilon must be a positive number/);
  await expect(set('keep=0')).rejects.toThrow(/^--set keep=0: keep must be a positive integer$/);
  await expect(set('save_every_minutes=-1')).rejects.toThrow(
    /^--set save_every_minutes=-1: save_every_minutes must be a number ≥ 0$/,
  );

  const run = configFile('run.json', { warmup: -3 });
  await expect(resolveSettings(defaults({ configFile: run }))).rejects.toThrow(
    new RegExp(`^config file ${run}: warmup must be a non-negative integer, got -3$`),
  );
  const typed = configFile('typed.json', { seed: 1.5 });
  await expect(resolveSettings(defaults({ configFile: typed }))).rejects.toThrow(/seed must be an integer, got 1\.5/);

  await expect(resolveSettings(defaults({ warmup: -3 }))).rejects.toThrow(
    /^--warmup must be a non-negative integer, got -3$/,
  );
  await expect(resolveSettings(defaults({ gradClip: Number.NaN }))).rejects.toThrow(/--grad-clip must be a number/);
  await expect(resolveSettings(defaults({ keep: 0 }))).rejects.toThrow(/^--keep must be a positive integer, got 0$/);
  await expect(resolveSettings(defaults({ optimizer: 'adam' as never }))).rejects.toThrow(
    /--optimizer must be one of adamw\|sgd/,
  );
  // Values on the edge of a range pass.
  const ok = await resolveSettings(defaults({ set: ['warmup=0', 'lr=0', 'save_every=0', 'seed=0'] }));
  expect(ok.options).toMatchObject({ warmup: 0, lr: 0, saveEvery: 0, seed: 0 });
});

test('precedence: --set, then typed flags, then the config file, then the defaults', async () => {
  const file = configFile('precedence.json', { steps: 7, warmup: 3, lr: 0.01, n_layer: 3 });
  // The file beats defaults; a typed flag beats the file; --set beats both.
  const r = await resolveSettings(
    defaults({ configFile: file, warmup: 5, lr: 0.02, explicit: ['warmup', 'lr'], set: ['lr=0.03', 'n_layer=4'] }),
  );
  expect(r.options).toMatchObject({ steps: 7, warmup: 5, lr: 0.03 });
  expect(r.model).toEqual({ n_layer: 4 });
  // Without --set and typed flags the file rules; without the file, the defaults.
  expect((await resolveSettings(defaults({ configFile: file }))).options).toMatchObject({ steps: 7, warmup: 3 });
  expect((await resolveSettings(defaults())).options).toMatchObject({ steps: 300, warmup: 20, weightDecay: 0.1 });
});

test('the flags of pretrain and compare-objectives are built from the table', () => {
  for (const { name, flag, setting } of pretrainSettings()) {
    const f = Pretrain.flags[flag];
    expect({ name, flag, default: f?.default }).toEqual({ name, flag, default: setting.default });
    if (setting.type === 'enum') expect([name, (f as { options?: unknown }).options]).toEqual([name, setting.values]);
    if (name !== 'objective' && name !== 'resume') expect(CompareObjectives.flags[flag]).toBeDefined();
  }
  expect(flagName('configFile')).toBe('config');
  expect(flagName('cwtTemperature')).toBe('cwt-temperature');
  expect(CompareObjectives.flags.objective).toBeUndefined();
  expect(CompareObjectives.flags.resume).toBeUndefined();
  expect(CompareObjectives.flags.out.default).toBe('runs/compare');
  expect(Pretrain.flags.out.default).toBe('runs/pretrain');
  // The keys of config files and run.json are the settings marked file, in snake case, next to the model's.
  expect([...TRAINING_KEYS.keys()]).toEqual([
    'steps',
    'max_time',
    'schedule_steps',
    'batch_size',
    'grad_accum',
    'seq_len',
    'lr',
    'optimizer',
    'weight_decay',
    'warmup',
    'schedule',
    'grad_clip',
    'order',
    'seed',
    'eval_every',
    'eval_batches',
    'save_every',
    'save_every_minutes',
    'keep',
    'save_dtype',
    'log_every',
    'cwt_temperature',
    'precision',
    'loss_scale',
    'loss_scale_growth',
  ]);
  for (const [key, name] of TRAINING_KEYS) expect(RUN_SCHEMA[key]).toBe(PRETRAIN_SETTINGS[name]);
  expect(RUN_SCHEMA.n_layer).toMatchObject({ type: 'int', min: 1 });
});

test('number flags: decimal text in range, or one message naming the flag', () => {
  const spec = { type: 'number', min: 0 } as const;
  expect(numberFromFlag('lr', '3e-4', spec)).toBe(3e-4);
  expect(numberFromFlag('lr', '0', spec)).toBe(0);
  expect(() => numberFromFlag('lr', '-1', spec)).toThrow(/^--lr must be a number ≥ 0, got -1$/);
  for (const bad of ['abc', '', '0x10', 'Infinity', '1e999', '1,5'])
    expect(() => numberFromFlag('lr', bad, spec)).toThrow(new RegExp(`^--lr must be a number, got ${bad}$`));
  expect(() => numberFromFlag('steps', '2.5', { type: 'int', min: 1 })).toThrow(/--steps must be an integer, got/);
  expect(numberFromFlag('warmup-ratio', '1', { type: 'number', min: 0, max: 1 })).toBe(1);
  expect(() => numberFromFlag('warmup-ratio', '1.5', { type: 'number', min: 0, max: 1 })).toThrow(
    /--warmup-ratio must be a number in \[0, 1\], got 1.5/,
  );
  expect(describeField({ type: 'number', exclusiveMin: 0 })).toBe('a positive number');
  expect(describeField({ type: 'number', exclusiveMin: 0, max: 2 })).toBe('a number in (0, 2]');
  expect(describeField({ type: 'int', min: 2 })).toBe('an integer ≥ 2');
  expect(describeField({ type: 'int', min: 0, nullable: true })).toBe('a non-negative integer or null');
});

test.each([
  [['pretrain', '--warmup', '-3'], /^hlm: --warmup must be a non-negative integer, got -3$/],
  [['pretrain', '--lr', 'fast'], /^hlm: --lr must be a number, got fast$/],
  [['compare-objectives', '--cwt-temperature', '0'], /^hlm: --cwt-temperature must be a positive number, got 0$/],
  [['generate', '--model', 'x', '--temperature', 'hot'], /^hlm: --temperature must be a number, got hot$/],
  [['whiten', '--embeddings', 'x', '--epsilon', '-1e-3'], /^hlm: --epsilon must be a number ≥ 0, got -1e-3$/],
  [
    ['finetune-glue', '--model', 'x', '--task', 'sst2', '--data', 'x', '--warmup-ratio', '2'],
    /^hlm: --warmup-ratio must be a number in \[0, 1\], got 2$/,
  ],
  [['finetune-glue', '--model', 'x', '--task', 'sst2', '--data', 'x', '--lr', '0'], /--lr must be a positive number/],
  [['bench', '--from', 'x', '--threshold', '150%'], /^hlm: --threshold: expected a percentage/],
])('%j: one line naming the flag, exit 1', (args, message) => {
  const r = hlm(args);
  expect(r.status).toBe(1);
  expect(r.stderr.trim().split('\n')).toHaveLength(1);
  expect(r.stderr.trim()).toMatch(message);
});

test('through the CLI: a bad --set and --eval-data are named; run.json repeats the run bit for bit', () => {
  const text = join(dir, 'text.txt');
  writeFileSync(text, 'The quick brown fox jumps over the lazy dog. '.repeat(200));
  const env = { HLM_CACHE_DIR: join(dir, 'cache') };
  const small = ['--set', 'n_layer=1', '--set', 'n_embd=8', '--set', 'n_head=2', '--set', 'n_positions=16'];
  const common = ['--data', text, ...small, '--batch-size', '2', '--seq-len', '8'];
  const lastLine = (s: string) => s.trim().split('\n').at(-1);

  const set = hlm(['pretrain', ...common, '--out', join(dir, 'bad1'), '--set', 'warmup=-3'], env);
  expect(set.status).toBe(1);
  expect(lastLine(set.stderr)).toBe('hlm: --set warmup=-3: warmup must be a non-negative integer');
  const evalData = hlm(
    ['pretrain', ...common, '--out', join(dir, 'bad2'), '--eval-every', '1', '--eval-data', '/nope'],
    env,
  );
  expect(evalData.status).toBe(1);
  expect(lastLine(evalData.stderr)).toBe('hlm: --eval-data /nope: no such file or directory');

  const first = join(dir, 'first');
  const args = ['--steps', '3', '--lr', '0.02', '--warmup', '1', '--seed', '5', '--eval-every', '0'];
  expect(hlm(['pretrain', ...common, ...args, '--out', first], env).status).toBe(0);
  const runJson = join(first, 'checkpoint', 'run.json');
  expect(JSON.parse(readFileSync(runJson, 'utf8'))).toMatchObject({
    steps: 3,
    lr: 0.02,
    warmup: 1,
    seed: 5,
    n_embd: 8,
  });
  const again = join(dir, 'again');
  const r = hlm(['pretrain', '--data', text, '--config', runJson, '--out', again], env);
  expect(r.status).toBe(0);
  const weights = (d: string) => readFileSync(join(d, 'checkpoint', 'model.safetensors'));
  expect(weights(again).equals(weights(first))).toBe(true);
  expect(readFileSync(join(again, 'checkpoint', 'run.json'), 'utf8')).toBe(readFileSync(runJson, 'utf8'));
}, 300_000);
