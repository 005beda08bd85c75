// The parts of an experiment that need no GPU: the budget's spelling and an experiment directory's lock
// and phases (recorded before and after, failures kept, other arguments and foreign directories refused).
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import { describeBudget, parseBudget } from '../src/experiment/budget.js';
import { ExperimentDir, type ExperimentSpec } from '../src/experiment/state.js';
import { readExperimentResult } from '../src/report/result-schema.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-exp-state-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test('budgets: durations in s, m, h (lower case), token counts with k, M, G or none', () => {
  expect(parseBudget('20m')).toEqual({ kind: 'time', seconds: 1200 });
  expect(parseBudget('1h30m')).toEqual({ kind: 'time', seconds: 5400 });
  expect(parseBudget('90s')).toEqual({ kind: 'time', seconds: 90 });
  expect(parseBudget('0.5h')).toEqual({ kind: 'time', seconds: 1800 });
  expect(parseBudget('5M')).toEqual({ kind: 'tokens', tokens: 5_000_000 });
  expect(parseBudget('500k')).toEqual({ kind: 'tokens', tokens: 500_000 });
  expect(parseBudget('1.5G')).toEqual({ kind: 'tokens', tokens: 1_500_000_000 });
  expect(parseBudget('120000')).toEqual({ kind: 'tokens', tokens: 120_000 });
  expect(parseBudget('2M tokens')).toEqual({ kind: 'tokens', tokens: 2_000_000 });
  for (const bad of ['', 'm', '20x', '-5m', '5 m', '0s', '1h-5m', '20M20m'])
    expect(() => parseBudget(bad)).toThrow(HlmError);
  expect(() => parseBudget('20 minutes')).toThrow(/--budget "20 minutes": expected a duration \(90s, 20m, 1h30m\)/);
  expect(describeBudget(parseBudget('20m'))).toBe('20 min');
  expect(describeBudget(parseBudget('90s'))).toBe('90 s');
  expect(describeBudget(parseBudget('5M'))).toBe('5,000,000 tokens');
});

function spec(out: string, o: Partial<ExperimentSpec> = {}): ExperimentSpec {
  return {
    out,
    experiment: 'test',
    title: 'A test',
    variantTitle: 'objective',
    arguments: { budget: '20s', seeds: [1, 2] },
    flagNames: {},
    phases: ['one', 'two'],
    planned: { seconds: 20 },
    build: { tool: 'hlm', version: '0' },
    hardware: {
      env: { os: 'x', arch: 'x', cpu: 'x', cores: 1, memory_bytes: 1, runtime: 'x' },
      gpu: null,
    },
    ...o,
  };
}

test('phases: recorded as they start and end, a failure kept with its message, done ones skipped', async () => {
  const out = join(dir, 'exp');
  const e = ExperimentDir.open(spec(out));
  expect(() => ExperimentDir.open(spec(out))).toThrow(/experiment directory .* is in use by another run: pid \d+/);
  let seen = '';
  expect(
    await e.run('one', async () => {
      seen = readExperimentResult(join(out, 'result.json')).phases[0].status;
      return { scores: [{ phase: 'one', task: 't', metric: 'm', variant: 'ce', seed: 1, value: 3 }] };
    }),
  ).toBe(true);
  expect(seen).toBe('running');
  await expect(
    e.run('two', async () => {
      throw new HlmError('it broke');
    }),
  ).rejects.toThrow('it broke');
  e.release();
  const r = readExperimentResult(join(out, 'result.json'));
  expect(r.phases.map((p) => [p.name, p.status, p.error])).toEqual([
    ['one', 'done', undefined],
    ['two', 'failed', 'it broke'],
  ]);
  expect(r.scores.length).toBe(1);

  const again = ExperimentDir.open(spec(out));
  expect(again.resumed).toBe(true);
  expect(await again.run('one', async () => ({}))).toBe(false);
  expect(await again.run('two', async () => ({}))).toBe(true);
  again.release();
  expect(readExperimentResult(join(out, 'result.json')).scores.length).toBe(1);

  expect(() => ExperimentDir.open(spec(out, { arguments: { budget: '30s', seeds: [1, 2] } }))).toThrow(
    /result\.json was made with --budget 20s; this command gives --budget 30s\. Rerun with the recorded/,
  );
  expect(() => ExperimentDir.open(spec(out, { experiment: 'other' }))).toThrow(/holds a "test" experiment/);
  const foreign = join(dir, 'foreign');
  mkdirSync(foreign);
  writeFileSync(join(foreign, 'notes.txt'), 'mine');
  expect(() => ExperimentDir.open(spec(foreign))).toThrow(/is not empty and holds no experiment/);
});
