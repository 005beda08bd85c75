// Fault injection: a tiny pretraining run with frequent saves is killed with SIGKILL at 24
// moments (random times from its start, which also land in start-up and recovery; random times
// just after a checkpoint, which land in the next steps, flushes and saves; and, through the
// test-only HLM_TEST_PAUSE hook, exactly after a save's files are written, between its two
// renames, and before its old copy is moved away or pruned), resumed after each, and finished.
// Its final weights and optimizer state must equal an uninterrupted run's bit for bit, its
// earlier checkpoints must be the same steps, and its metrics.jsonl the same rows, each step
// once. What legitimately differs between the two runs and is ignored: in metrics rows
// `elapsed_s` (wall time) and `run_id`; in config.json the run id (hlm.run_id) and the last
// process's command line (hlm.run: --resume or --overwrite, --tokenizer, --out), whose resolved
// settings, run.json, must be equal. Nothing else is.
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { makeRandom } from './helpers/check.js';
import { hlm, repoRoot } from './helpers/cli.js';
import { tinyRun } from './helpers/tiny-run.js';

let dir: string;
let env: Record<string, string>;
let common: string[];
let tokenizer: string;
const rand = makeRandom();
const STEPS = 150;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-faults-'));
  env = { HLM_CACHE_DIR: join(dir, 'cache'), HLM_LOG_LEVEL: 'info' };
  // A 300-token vocabulary keeps a step to a few milliseconds, so that the kills, not the steps, take the time.
  const tiny = tinyRun(dir, env);
  tokenizer = tiny.tokenizer;
  common = [
    'pretrain',
    ...tiny.model,
    ...['--lr', '0.01', '--warmup', '3', '--seed', '7'],
    ...['--steps', String(STEPS), '--save-every', '4', '--log-every', '3', '--keep', '3', '--save-every-minutes', '0'],
  ];
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

type Plan =
  { kind: 'time'; ms: number } | { kind: 'after-save'; saves: number; ms: number } | { kind: 'pause'; at: string };

interface Attempt {
  plan: Plan;
  args: string[];
  code: number | null;
  signal: NodeJS.Signals | null;
  stderr: string;
}

/** Run one attempt of `hlm pretrain`, killing it with SIGKILL as the plan says. */
function attempt(args: string[], plan: Plan): Promise<Attempt> {
  const pause = plan.kind === 'pause' ? { HLM_TEST_PAUSE: plan.at } : {};
  const child = spawn(process.execPath, [join(repoRoot(), 'bin/run.js'), ...args], {
    cwd: repoRoot(),
    env: { ...process.env, ...env, ...pause },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  let saves = 0;
  const timers: NodeJS.Timeout[] = [];
  const kill = () => child.kill('SIGKILL');
  if (plan.kind === 'time') timers.push(setTimeout(kill, plan.ms));
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk: string) => {
    stderr += chunk;
    if (plan.kind === 'pause' && chunk.includes('hlm-test: paused at')) kill();
    if (plan.kind === 'after-save') {
      saves += chunk.split('"msg":"checkpoint at step').length - 1;
      if (saves >= plan.saves) timers.push(setTimeout(kill, plan.ms));
    }
  });
  return new Promise((done) =>
    child.on('exit', (code, signal) => {
      for (const t of timers) clearTimeout(t);
      done({ plan, args, code, signal, stderr });
    }),
  );
}

/** Whether `out` holds a checkpoint that start-up recovery can put in place. */
function resumable(out: string): boolean {
  if (!existsSync(out)) return false;
  const history = join(out, 'checkpoints');
  return (
    existsSync(join(out, 'checkpoint')) ||
    existsSync(join(out, '.checkpoint.hlm-old')) ||
    (existsSync(history) && readdirSync(history).length > 0)
  );
}

const bytes = (out: string, file: string) => readFileSync(join(out, 'checkpoint', file));
const rows = (out: string) =>
  readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
/** A metrics row without what differs between two runs of the same training: wall time and run id. */
const comparable = ({ elapsed_s: _t, run_id: _id, ...rest }: Record<string, unknown>) => rest;

test('24 SIGKILLs at random moments, in and out of saves, each resumed: bit for bit an unbroken run', async () => {
  const ref = join(dir, 'ref');
  const whole = hlm([...common, '--tokenizer', tokenizer, '--out', ref], env, 300_000);
  expect(whole.status).toBe(0);

  const out = join(dir, 'killed');
  const pauses = ['checkpoint-written', 'checkpoint-swapped', 'checkpoint-placed'];
  const plans: Plan[] = [
    ...Array.from({ length: 9 }, (_, i): Plan => ({ kind: 'pause', at: `${pauses[i % 3]}:${1 + (i % 4)}` })),
    ...Array.from({ length: 8 }, (): Plan => ({ kind: 'time', ms: Math.round(150 + 700 * rand.next()) })),
    ...Array.from({ length: 7 }, (): Plan => ({
      kind: 'after-save',
      saves: 1 + Math.floor(3 * rand.next()),
      ms: Math.round(20 * rand.next()),
    })),
  ];
  // Shuffled, so that each kind meets every phase of the run.
  for (let i = plans.length - 1; i > 0; i--) {
    const j = Math.floor(rand.next() * (i + 1));
    [plans[i], plans[j]] = [plans[j], plans[i]];
  }
  const log: Attempt[] = [];
  const argsFor = () =>
    resumable(out)
      ? [...common, '--out', out, '--resume']
      : [...common, '--tokenizer', tokenizer, '--out', out, '--overwrite'];
  for (const plan of plans) {
    const a = await attempt(argsFor(), plan);
    log.push(a);
    if (a.signal !== 'SIGKILL')
      throw new Error(
        `attempt ${log.length} (${JSON.stringify(plan)}) was not killed: exit ${a.code}, seed ${rand.seed}\n` +
          a.stderr,
      );
  }
  const last = await attempt(argsFor(), { kind: 'time', ms: 600_000 });
  if (last.code !== 0) throw new Error(`the final attempt failed (${last.code}, seed ${rand.seed}):\n${last.stderr}`);

  expect(log.filter((a) => a.signal === 'SIGKILL').length).toBeGreaterThanOrEqual(20);
  // Some kills left work for the recovery to do, and it said what it did.
  expect(log.some((a) => /recovery: .*restored the checkpoint of step/.test(a.stderr))).toBe(true);

  for (const f of ['model.safetensors', 'optimizer.safetensors'])
    expect([f, bytes(out, f).equals(bytes(ref, f))]).toEqual([f, true]);
  const config = (o: string) => JSON.parse(bytes(o, 'config.json').toString('utf8'));
  const [a, b] = [config(ref), config(out)];
  for (const c of [a, b]) {
    delete c.hlm.run_id;
    delete c.hlm.run; // the last process's command line: --resume or --overwrite, --tokenizer and --out differ
    expect(c.hlm.train_seconds).toBeGreaterThan(0);
    delete c.hlm.train_seconds; // the training clock: wall time, never the same twice
  }
  expect(b).toEqual(a);
  expect(bytes(out, 'run.json').equals(bytes(ref, 'run.json'))).toBe(true);
  expect(readdirSync(join(out, 'checkpoints')).sort()).toEqual(readdirSync(join(ref, 'checkpoints')).sort());
  for (const d of readdirSync(join(ref, 'checkpoints'))) {
    const m = (o: string) => readFileSync(join(o, 'checkpoints', d, 'model.safetensors'));
    expect([d, m(out).equals(m(ref))]).toEqual([d, true]);
  }

  const got = rows(out);
  expect(got.map((r) => r.step)).toEqual(Array.from({ length: STEPS }, (_, i) => i + 1));
  expect(got.map(comparable)).toEqual(rows(ref).map(comparable));
  expect(new Set(got.map((r) => r.run_id)).size).toBe(1);
  // Nothing is left behind: no lock, no temporary or moved-aside directory, no temporary file.
  expect(readdirSync(out).sort()).toEqual(['checkpoint', 'checkpoints', 'metrics.jsonl']);
}, 300_000);
