// A pretraining run's life through the CLI, one test per defect of issue 16 "Never lose a run":
// a save cut short between its renames (1), the checkpoint kept after a divergence (2), one run
// per --out (3), metrics each step once (4), refusals before any work (5), periodic saves,
// signals and stale temporaries (6), and progress when stderr is not a terminal (11). A
// 300-token vocabulary keeps every run to a fraction of a second of training.
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { appendFileSync, statSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hlm, spawnHlm } from './helpers/cli.js';
import { tinyRun } from './helpers/tiny-run.js';

let dir: string;
let env: Record<string, string>;
let tokenizer: string;
let model: string[];

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-lifecycle-'));
  env = { HLM_CACHE_DIR: join(dir, 'cache') };
  ({ tokenizer, model } = tinyRun(dir, env));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** `hlm pretrain` into `out`; a fresh run gets the test's tokenizer. */
function pretrain(out: string, args: string[], extraEnv: Record<string, string> = {}) {
  const fresh = !args.includes('--resume');
  const logEvery = args.includes('--log-every') ? [] : ['--log-every', '2'];
  return hlm(['pretrain', ...model, ...logEvery, ...(fresh ? ['--tokenizer', tokenizer] : []), '--out', out, ...args], {
    ...env,
    ...extraEnv,
  });
}

const rows = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as { step: number; loss: number; run_id: string });
const config = (ck: string) => JSON.parse(readFileSync(join(ck, 'config.json'), 'utf8'));
const lastLine = (s: string) => s.trim().split('\n').at(-1)!;
const steps = (n: number, from = 1) => Array.from({ length: n - from + 1 }, (_, i) => from + i);

test('1: a save cut short between its two renames is recovered at start-up; a fresh run refuses the --out', () => {
  const out = join(dir, 'renames');
  expect(pretrain(out, ['--steps', '8', '--save-every', '2']).status).toBe(0);
  expect(readdirSync(join(out, 'checkpoints')).sort()).toEqual(['step-4', 'step-6']);
  // As a kill between the renames leaves it: the latest checkpoint moved aside, none in place.
  renameSync(join(out, 'checkpoint'), join(out, '.checkpoint.hlm-old'));
  const weights = readFileSync(join(out, '.checkpoint.hlm-old', 'model.safetensors'));
  const fresh = pretrain(out, ['--steps', '2']);
  expect(fresh.status).toBe(1);
  expect(lastLine(fresh.stderr)).toMatch(
    /^hlm: .*renames already holds a run \(a checkpoint at step 8, 2 earlier checkpoint\(s\), metrics\.jsonl\): pass --resume/,
  );
  // The refusal changed nothing but putting the checkpoint back.
  expect(readFileSync(join(out, 'checkpoint', 'model.safetensors')).equals(weights)).toBe(true);
  expect(rows(out).map((r) => r.step)).toEqual(steps(8));

  // The rotation's own window: the latest moved to checkpoints/, the new one not yet in place.
  renameSync(join(out, 'checkpoint'), join(out, 'checkpoints', 'step-8'));
  const r = pretrain(out, ['--steps', '10', '--save-every', '2', '--resume'], { HLM_LOG_LEVEL: 'info' });
  expect(r.status).toBe(0);
  expect(r.stderr).toMatch(/recovery: .*checkpoint was missing .*restored the checkpoint of step 8 from .*step-8/);
  expect(config(join(out, 'checkpoint')).hlm.step).toBe(10);
  expect(readdirSync(join(out, 'checkpoints')).sort()).toEqual(['step-6', 'step-8']);
  expect(rows(out).map((x) => x.step)).toEqual(steps(10));
});

test('2: after a divergence the kept checkpoint is the last finite one, named with its real step', () => {
  // The run: lr 1e30 breaks the weights at step 1, so no checkpoint may be kept at all.
  const d = join(dir, 'diverge');
  const args = ['--steps', '20', '--lr', '1e30', '--warmup', '0', '--grad-clip', '0'];
  const r = pretrain(d, [...args, '--save-every', '1']);
  expect(r.status).toBe(1);
  expect(lastLine(r.stderr)).toMatch(/^hlm: the loss would become (NaN|Infinity) at step 2; .*No checkpoint was saved/);
  expect(existsSync(join(d, 'checkpoint'))).toBe(false);
  const d2 = join(dir, 'diverge-nosave');
  const r2 = pretrain(d2, args);
  expect(r2.status).toBe(1);
  expect(lastLine(r2.stderr)).toMatch(
    /^hlm: the loss became (NaN|Infinity) at step 2; stopped \(its update was not applied\)\. No checkpoint was saved/,
  );
  expect(r2.stderr).not.toMatch(/step 0/);

  // Six good steps, then the same blow-up on --resume: step 6 stays, usable.
  const d3 = join(dir, 'diverge-late');
  expect(pretrain(d3, ['--steps', '6', '--save-every', '3']).status).toBe(0);
  const before = readFileSync(join(d3, 'checkpoint', 'model.safetensors'));
  const r3 = pretrain(d3, [...args, '--save-every', '1', '--resume']);
  expect(r3.status).toBe(1);
  expect(lastLine(r3.stderr)).toMatch(
    new RegExp(`The last finite checkpoint is step 6: ${join(d3, 'checkpoint').replace(/[.]/g, '\\.')}$`),
  );
  expect(readFileSync(join(d3, 'checkpoint', 'model.safetensors')).equals(before)).toBe(true);
  const g = hlm(['generate', '--model', join(d3, 'checkpoint'), '--prompt', 'hi', '--max-tokens', '4'], env);
  expect([g.status, g.stderr]).toEqual([0, expect.any(String)]);
  expect(pretrain(d3, ['--steps', '8', '--resume']).status).toBe(0);
});

test('3: one run per --out: concurrent runs refuse naming the holder, a dead holder is taken over', async () => {
  const out = join(dir, 'locked');
  const runs = [0, 1, 2].map(() =>
    spawnHlm(['pretrain', ...model, '--log-every', '2', '--tokenizer', tokenizer, '--out', out, '--steps', '300'], env),
  );
  const ends = await Promise.all(runs.map((r) => r.done));
  expect(ends.filter((e) => e.code === 0)).toHaveLength(1);
  const winner = runs[ends.findIndex((e) => e.code === 0)].child.pid;
  for (const e of ends.filter((x) => x.code !== 0)) {
    expect(e.code).toBe(1);
    expect(lastLine(e.stderr)).toMatch(
      new RegExp(`^hlm: (run directory .* is in use by another run: pid ${winner} |.* already holds a run)`),
    );
  }
  expect(rows(out).map((r) => r.step)).toEqual(steps(300));
  expect(existsSync(join(out, 'run.lock'))).toBe(false);

  // A run killed with SIGKILL leaves its lock; the next one takes it over and says so.
  const killed = spawnHlm(
    ['pretrain', ...model, '--log-every', '2', '--resume', '--out', out, '--steps', '100000'],
    env,
  );
  for (let t = 0; !existsSync(join(out, 'run.lock')); t++) {
    if (t > 3000 || killed.child.exitCode !== null) throw new Error(`no lock from the run:\n${killed.stderr()}`);
    await new Promise((r) => setTimeout(r, 20));
  }
  const busy = pretrain(out, ['--steps', '100001', '--resume']);
  expect(busy.status).toBe(1);
  expect(lastLine(busy.stderr)).toMatch(new RegExp(`is in use by another run: pid ${killed.child.pid} `));
  killed.child.kill('SIGKILL');
  await killed.done;
  const next = pretrain(out, ['--steps', '302', '--resume']);
  expect(next.status).toBe(0);
  expect(next.stderr).toMatch(new RegExp(`took over the lock of pid ${killed.child.pid} .*no longer running`));
});

test('4: metrics.jsonl has every step once, from one run id: rows past the checkpoint are dropped on resume', () => {
  const out = join(dir, 'metrics');
  expect(pretrain(out, ['--steps', '9', '--save-every', '3']).status).toBe(0);
  const id = rows(out)[0].run_id;
  expect(id).toMatch(/^\d{8}T\d{6}-[0-9a-f]{6}$/);
  // What a kill leaves: rows written after the checkpoint, and a row cut short.
  const m = join(out, 'metrics.jsonl');
  appendFileSync(m, '{"step":10,"loss":1}\n{"step":11,"loss":1}\n{"step":12,"lo');
  renameSync(join(out, 'checkpoint'), join(out, 'ck9'));
  renameSync(join(out, 'checkpoints', 'step-6'), join(out, 'checkpoint'));
  rmSync(join(out, 'ck9'), { recursive: true });
  const r = pretrain(out, ['--steps', '12', '--resume'], { HLM_LOG_LEVEL: 'info' });
  expect(r.status).toBe(0);
  expect(r.stderr).toMatch(/dropped 6 row\(s\) written after the checkpoint of step 6/);
  expect(rows(out).map((x) => x.step)).toEqual(steps(12));
  expect(new Set(rows(out).map((x) => x.run_id))).toEqual(new Set([id]));
  // --overwrite starts a new log, under a new run id.
  expect(pretrain(out, ['--steps', '2', '--overwrite']).status).toBe(0);
  expect(rows(out).map((x) => x.step)).toEqual([1, 2]);
  expect(rows(out)[0].run_id).not.toBe(id);
  expect(existsSync(join(out, 'checkpoints'))).toBe(false);
});

test('5: an --out that cannot be used is refused before any work', () => {
  const out = join(dir, 'users-file');
  mkdirSync(join(out, 'checkpoint'), { recursive: true });
  writeFileSync(join(out, 'checkpoint', 'notes.txt'), 'mine');
  for (const extra of [[], ['--overwrite']]) {
    const r = pretrain(out, ['--steps', '50', ...extra], { HLM_LOG_LEVEL: 'info' });
    expect(r.status).toBe(1);
    expect(lastLine(r.stderr)).toMatch(/^hlm: refusing to replace .*checkpoint: it holds 'notes\.txt'/);
    expect(r.stderr).not.toMatch(/preparing data/);
  }
  expect(readdirSync(out).sort()).toEqual(['checkpoint']);
  expect(readFileSync(join(out, 'checkpoint', 'notes.txt'), 'utf8')).toBe('mine');
  const file = join(dir, 'a-file');
  writeFileSync(file, 'x');
  const under = pretrain(join(file, 'run'), ['--steps', '50'], { HLM_LOG_LEVEL: 'info' });
  expect(under.status).toBe(1);
  expect(lastLine(under.stderr)).toMatch(
    /^hlm: cannot write run directory .*a-file\/run: .*a-file is not a directory$/,
  );
  expect(under.stderr).not.toMatch(/preparing data/);
});

test('6: timed saves by default; SIGINT, SIGTERM save and exit 130, 143; stale temporaries go', async () => {
  // Periodic saves with no --save-every (the default is 10 minutes; here a few hundredths of a second).
  const timed = join(dir, 'timed');
  const t = pretrain(timed, ['--steps', '200', '--save-every-minutes', '0.0005', '--keep', '2'], {
    HLM_LOG_LEVEL: 'info',
  });
  expect(t.status).toBe(0);
  if (!((t.stderr.match(/checkpoint at step/g) ?? []).length > 2)) throw new Error(t.stderr);
  expect(readdirSync(join(timed, 'checkpoints'))).toHaveLength(1);

  for (const [signal, code] of [
    ['SIGINT', 130],
    ['SIGTERM', 143],
  ] as const) {
    const out = join(dir, `signal-${signal}`);
    const run = spawnHlm(
      ['pretrain', ...model, '--log-every', '2', '--tokenizer', tokenizer, '--out', out, '--steps', '1000000'],
      {
        ...env,
        HLM_LOG_LEVEL: 'info',
      },
    );
    await run.waitFor('"step":20,');
    run.child.kill(signal);
    const end = await run.done;
    expect(end.code).toBe(code);
    const m = lastLine(end.stderr).match(
      new RegExp(
        `^hlm: stopped by ${signal} after step (\\d+): checkpoint of step \\d+ in (.*); continue with --resume$`,
      ),
    );
    if (!m) throw new Error(end.stderr);
    expect(m[2]).toBe(join(out, 'checkpoint'));
    const step = Number(m[1]);
    expect(config(join(out, 'checkpoint')).hlm.step).toBe(step);
    expect(rows(out).map((r) => r.step)).toEqual(steps(step));
    expect(existsSync(join(out, 'run.lock'))).toBe(false);
  }

  // A second signal exits at once: the run stops without a save of its own.
  const twice = join(dir, 'signal-twice');
  const run = spawnHlm(
    ['pretrain', ...model, '--log-every', '2', '--tokenizer', tokenizer, '--out', twice, '--steps', '1000000'],
    {
      ...env,
      HLM_LOG_LEVEL: 'info',
      HLM_TEST_PAUSE: 'checkpoint-written',
    },
  );
  await run.waitFor('"step":10,');
  run.child.kill('SIGINT');
  await run.waitFor('hlm-test: paused at checkpoint-written');
  run.child.kill('SIGINT');
  const end = await run.done;
  expect(end.code).toBe(130);
  expect(existsSync(join(twice, 'checkpoint'))).toBe(false);
  expect(existsSync(join(twice, 'run.lock'))).toBe(false);
  const temps = readdirSync(twice).filter((n) => n.startsWith('.checkpoint.tmp-'));
  expect(temps).toHaveLength(1); // the save the second signal cut short
  // The next start removes it and says so.
  const again = pretrain(twice, ['--steps', '3', '--overwrite'], { HLM_LOG_LEVEL: 'info' });
  expect(again.status).toBe(0);
  expect(again.stderr).toContain(`removed ${join(twice, temps[0])}, the temporary directory of a save`);
  expect(readdirSync(twice).sort()).toEqual(['checkpoint', 'metrics.jsonl']);
  expect(statSync(join(twice, 'checkpoint')).mode & 0o777).toBe(0o777 & ~process.umask());

  // A lock temporary or a stale lock moved aside by a process still running (a concurrent run trying to take the
  // lock; here this test's own process) is not this run's to remove; one whose writer has ended is.
  const dead = spawnSync('true').pid;
  const live = [`.run.lock.tmp-${process.pid}-0a1b2c3d`, `run.lock.stale-${process.pid}-0a1b2c3d`];
  const gone = `.run.lock.tmp-${dead}-0a1b2c3d`;
  for (const name of [...live, gone]) writeFileSync(join(twice, name), '{}\n');
  const third = pretrain(twice, ['--steps', '4', '--resume'], { HLM_LOG_LEVEL: 'info' });
  expect(third.status).toBe(0);
  expect(third.stderr).toContain(`removed ${join(twice, gone)}, left by a write that was cut short`);
  expect(readdirSync(twice).sort()).toEqual([...live, 'checkpoint', 'checkpoints', 'metrics.jsonl'].sort());
}, 300_000);

test('11: with stderr not a terminal, progress is a log line every --log-every steps', () => {
  const out = join(dir, 'progress');
  const r = pretrain(out, ['--steps', '10', '--log-every', '5'], { HLM_LOG_LEVEL: 'info' });
  expect(r.status).toBe(0);
  const lines = r.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((l) => 'eta_s' in l);
  expect(lines.map((l) => l.step)).toEqual([5, 10]);
  for (const l of lines) {
    expect(l.msg).toMatch(/^step \d+\/10 {2}loss \d+\.\d{4} {2}\d+ tok\/s {2}ETA \d+s$/);
    if (!((l.tokens_per_s as number) > 0 && Number.isFinite(l.loss))) throw new Error(JSON.stringify(l));
  }
});
