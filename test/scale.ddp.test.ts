// scale/train_ddp.py, the PyTorch DistributedDataParallel trainer, against hlm itself: two gloo ranks on the CPU
// (torchrun, i.e. python -m torch.distributed.run) take one step from the same checkpoint and data as hlm.
//   CE: one DDP SGD step over the global batch B equals hlm's single-step contract at batch B.
//   CWT: a target's negatives are its own rank's targets, so the DDP step is hlm's step with gradient
//     accumulation over the ranks' rows: `--grad-accum 2 --batch-size B/2` (micro-batch r = rank r's rows, each
//     target weighing the same). For the encoder, DDP masks the global batch (its ranks hold different numbers
//     of masked targets) while hlm masks each micro-batch on its own, so the expected step is the float64
//     reference, Σ_r (K_r/K)·g_r.
// Equality is the relative L2 error of each tensor's update against hlm's. A large lr makes every update much
// larger than the float32 rounding of p + Δ (the LayerNorm weights sit at 1 with gradients near 1e-4).
// Needs a Python with torch and numpy (CI: Debian's python3-torch); without one the tests fail and say so.
import { spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTestGpu } from './helpers/gpu.js';
import { relErr } from './helpers/check.js';
import { repoRoot } from './helpers/cli.js';
import { EOT, TINY_DECODER, TINY_ENCODER } from './helpers/tiny-run.js';
import type { Gpu } from '../src/gpu/device.js';
import { pretrain, readMetrics, type PretrainOptions } from '../src/train/pretrain.js';
import { loadCheckpoint, saveCheckpoint, type LoadedCheckpoint } from '../src/model/checkpoint.js';
import { BatchSource } from '../src/data/batches.js';
import { maskTokens } from '../src/data/mlm.js';
import { streamRng } from '../src/data/random.js';
import { writeShard } from '../src/data/shards.js';
import { defaultCorpusPath } from '../src/data/corpus.js';
import { evalLambada } from '../src/eval/evaluate.js';
import type { ModelConfig } from '../src/model/config.js';
import { initParams, paramLayout } from '../src/model/params.js';
import { gpt2LossAndGrads } from '../src/reference/gpt2.js';

const B = 4;
const T = 16;
const LR = 100;
const TOL = 1e-4;
const TOKENS = 3000;

/** The first Python that imports torch and numpy: $HLM_TORCH_PYTHON, Debian's /usr/bin/python3, python3. */
function torchPython(): string {
  const candidates = [process.env.HLM_TORCH_PYTHON, '/usr/bin/python3', 'python3'].filter(Boolean) as string[];
  for (const py of candidates) {
    const r = spawnSync(py, ['-c', 'import torch, numpy'], { encoding: 'utf8' });
    if (r.status === 0) return py;
  }
  throw new Error(
    `no Python with torch and numpy (tried ${candidates.join(', ')}): install Debian's python3-torch ` +
      `(apt-get install --no-install-recommends python3-torch) or set HLM_TORCH_PYTHON`,
  );
}

let gpu: Gpu;
let dir: string;
let python: string;
let tokens: number[];
const root = repoRoot();
const decoder = TINY_DECODER;
const encoder = TINY_ENCODER;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-ddp-'));
  process.env.HLM_CACHE_DIR = join(dir, 'cache'); // the DDP runs inherit it and find hlm's shards of the text
  writeFileSync(
    join(dir, 'corpus.txt'),
    readFileSync(defaultCorpusPath(), 'utf8')
      .slice(0, 20_000)
      .replace(/<[^>]+>/g, ''),
  );
  python = torchPython();
  gpu = await openTestGpu();
  await saveCheckpoint(join(dir, 'init'), { config: decoder, params: initParams(decoder, 7) });
  await saveCheckpoint(join(dir, 'init-enc'), { config: encoder, params: initParams(encoder, 7) });
  // Zipf-like ids (repeats, so CWT sees duplicate targets) and an end-of-text token every 97.
  const r = streamRng(5);
  tokens = Array.from({ length: TOKENS }, (_, i) => (i % 97 === 0 ? EOT : Math.floor(r() ** 3 * EOT)));
  writeShard(join(dir, 'data.bin'), tokens, 1);
});
afterAll(() => {
  gpu?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function run(cmd: string, args: string[], timeout = 150_000) {
  const r = spawnSync(cmd, args, {
    cwd: root,
    encoding: 'utf8',
    timeout,
    env: { ...process.env, OMP_NUM_THREADS: '1' },
  });
  return { status: r.status, out: `${r.stdout ?? ''}${r.stderr ?? ''}` };
}

/**
 * torchrun with nproc ranks. --redirects 1 --tee 1: torch 1.13's launcher cannot parse its default "0" under
 * Python 3.11 (Debian bookworm); this sends stdout through a tee and is harmless elsewhere.
 */
async function ddp(args: string[], nproc = 2): Promise<void> {
  const port = await new Promise<number>((done) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => done(port));
    });
  });
  const launch = ['-m', 'torch.distributed.run', '--redirects', '1', '--tee', '1', '--monitor_interval', '1'];
  launch.push('--master_port', String(port), '--nproc_per_node', String(nproc));
  const r = run(python, [...launch, 'scale/train_ddp.py', ...args]);
  if (r.status !== 0) throw new Error(`train_ddp.py ${args.join(' ')} exited ${r.status}:\n${r.out.slice(-3000)}`);
}

const contract = {
  optimizer: 'sgd',
  order: 'sequential',
  gradClip: 0,
  weightDecay: 0,
  schedule: 'constant',
  warmup: 0,
  steps: 1,
  seqLen: T,
  lr: LR,
} as const;

function flags(o: Partial<PretrainOptions>): string[] {
  const names: [keyof PretrainOptions, string][] = [
    ['init', '--init'],
    ['out', '--out'],
    ['objective', '--objective'],
    ['arch', '--arch'],
    ['steps', '--steps'],
    ['scheduleSteps', '--schedule-steps'],
    ['batchSize', '--batch-size'],
    ['seqLen', '--seq-len'],
    ['lr', '--lr'],
    ['optimizer', '--optimizer'],
    ['weightDecay', '--weight-decay'],
    ['warmup', '--warmup'],
    ['schedule', '--schedule'],
    ['gradClip', '--grad-clip'],
    ['order', '--order'],
    ['seed', '--seed'],
  ];
  const out = names.flatMap(([k, f]) => (o[k] === undefined ? [] : [f, String(o[k])]));
  return [...out, ...(o.resume ? ['--resume'] : []), '--data', ...(o.data ?? [])];
}

async function hlm(o: Partial<PretrainOptions>): Promise<void> {
  await pretrain(gpu, {
    arch: 'decoder',
    objective: 'ce',
    preset: 'tiny',
    set: [],
    data: [join(dir, 'data.bin')],
    out: '',
    resume: false,
    steps: 1,
    optimizer: 'adamw',
    weightDecay: 0.1,
    warmup: 20,
    schedule: 'cosine',
    gradClip: 1,
    order: 'shuffled',
    seed: 1,
    evalEvery: 0,
    evalBatches: 1,
    saveEvery: 0,
    logEvery: 10,
    ...o,
  });
}

const ck = (run: string) => loadCheckpoint(join(dir, run, 'checkpoint'));

/** Relative L2 error of each tensor's update (got − init) against the expected update; the worst one. */
function updateErrors(init: Float32Array, got: Float32Array, want: (name: string) => Float64Array, cfg: ModelConfig) {
  let worst = { name: '', err: 0 };
  for (const t of paramLayout(cfg).tensors) {
    const g = Float64Array.from(got.subarray(t.offset, t.offset + t.size), (p, i) => p - init[t.offset + i]);
    const err = relErr(g, want(t.name));
    if (!(err <= worst.err)) worst = { name: t.name, err };
  }
  return worst;
}

function hlmUpdate(init: LoadedCheckpoint, after: LoadedCheckpoint[]) {
  return (name: string) => {
    const t = init.layout.byName.get(name)!;
    const u = new Float64Array(t.size);
    for (const a of after)
      for (let i = 0; i < t.size; i++) u[i] += (a.params[t.offset + i] - init.params[t.offset + i]) / after.length;
    return u;
  };
}

function report(what: string, w: { name: string; err: number }): void {
  console.log(`DDP step equality, ${what}: worst relative L2 error of an update ${w.err.toExponential(2)} (${w.name})`);
}

test('the Python data layer draws hlm rows (sequential and shuffled) and masks', () => {
  const spec = { shard: join(dir, 'data.bin'), B: 16, T: 8, seed: 3, batches: [0, 1, 23, 24, 50], steps: [1, 2, 7] };
  const code = [
    'import json, sys',
    "sys.path.insert(0, 'scale')",
    'from hlm_data import BatchSource, mask_tokens',
    's = json.loads(sys.argv[1])',
    'out = {}',
    'for order in ("sequential", "shuffled"):',
    '    src = BatchSource([s["shard"]], s["B"], s["T"], order, s["seed"], 50257)',
    '    out[order] = [[x.tolist() for x in src.batch_at(b)] for b in s["batches"]]',
    'x = src.batch_at(0)[0]',
    'out["masks"] = [[a.tolist() for a in mask_tokens(x, s["seed"], k, 50257, 50257, [50256])] for k in s["steps"]]',
    'print(json.dumps(out))',
  ].join('\n');
  const r = run(python, ['-c', code, JSON.stringify(spec)]);
  expect(r.status).toBe(0);
  const got = JSON.parse(r.out);
  for (const order of ['sequential', 'shuffled'] as const) {
    const src = BatchSource.open([spec.shard], { batchSize: 16, seqLen: 8, order, seed: 3 });
    const want = spec.batches.map((b) => {
      const x = src.batchAt(b);
      return [x.inputs, x.targets].map((a) =>
        Array.from({ length: 16 }, (_, i) => Array.from(a.slice(i * 8, i * 8 + 8))),
      );
    });
    if (order === 'shuffled') {
      const x = src.batchAt(0).inputs;
      const masks = spec.steps.map((step) => {
        const m = maskTokens(x, { seed: 3, step, maskId: 50257, vocabSize: 50257, specialIds: [EOT] });
        return [Array.from(m.inputs), Array.from(m.targets)];
      });
      expect(got.masks).toEqual(masks);
      expect(masks[0][1].filter((t) => t >= 0).length).toBe(19); // round(0.15·128) selected
    }
    src.close();
    expect(got[order]).toEqual(want);
  }
});

test('CE: one DDP SGD step on 2 ranks is hlm single-step contract; hlm resumes the checkpoint', async () => {
  await hlm({ ...contract, init: join(dir, 'init'), out: join(dir, 'hlm-ce'), batchSize: B });
  await ddp(
    flags({
      ...contract,
      init: join(dir, 'init'),
      out: join(dir, 'ddp-ce'),
      batchSize: B,
      data: [join(dir, 'data.bin')],
    }),
  );
  const [init, want, got] = await Promise.all([loadCheckpoint(join(dir, 'init')), ck('hlm-ce'), ck('ddp-ce')]);
  const w = updateErrors(init.params, got.params, hlmUpdate(init, [want]), decoder);
  report('CE decoder', w);
  expect(!(w.err <= TOL)).toBe(false);
  const [lh] = readMetrics(join(dir, 'hlm-ce'));
  const [ld] = readMetrics(join(dir, 'ddp-ce'));
  expect(!(Math.abs(ld.loss - lh.loss) <= 1e-5 * lh.loss)).toBe(false);
  expect(!(Math.abs(ld.grad_norm - lh.grad_norm) <= 1e-4 * lh.grad_norm)).toBe(false);
  expect(got.hlm.step).toBe(1);
  expect(got.hlm.data).toEqual(want.hlm.data);
  expect(got.optimizer).toBeUndefined(); // SGD, as hlm: no moments
  // The same flags plus --resume continue the DDP run in hlm.
  await hlm({ ...contract, out: join(dir, 'ddp-ce'), batchSize: B, resume: true, steps: 2 });
  const next = await ck('ddp-ce');
  expect(next.hlm.step).toBe(2);
  expect((next.hlm.data as { position: number }).position).toBe(2);
  expect(readMetrics(join(dir, 'ddp-ce')).map((m) => m.step)).toEqual([1, 2]);
  const lambada = join(root, '..', 'shared', 'data', 'lambada', 'lambada_test_sample200.jsonl');
  if (existsSync(lambada)) {
    const r = await evalLambada(gpu, { model: join(dir, 'ddp-ce', 'checkpoint'), data: lambada, limit: 2 });
    expect(r.n).toBe(2);
  }
}, 180_000);

test('CWT: the DDP step is hlm step with --grad-accum 2 over the ranks rows (negatives per rank)', async () => {
  const o = { ...contract, objective: 'cwt', init: join(dir, 'init') } as const;
  await hlm({ ...o, out: join(dir, 'hlm-cwt-accum'), batchSize: B / 2, gradAccum: 2 });
  await hlm({ ...o, out: join(dir, 'hlm-cwt-whole'), batchSize: B });
  await ddp(flags({ ...o, out: join(dir, 'ddp-cwt'), batchSize: B, data: [join(dir, 'data.bin')] }));
  const [init, accum, whole, got] = await Promise.all([
    loadCheckpoint(join(dir, 'init')),
    ck('hlm-cwt-accum'),
    ck('hlm-cwt-whole'),
    ck('ddp-cwt'),
  ]);
  const w = updateErrors(init.params, got.params, hlmUpdate(init, [accum]), decoder);
  report('CWT decoder', w);
  expect(!(w.err <= TOL)).toBe(false);
  const loss = (run: string) => readMetrics(join(dir, run))[0].loss;
  expect(!(Math.abs(loss('ddp-cwt') - loss('hlm-cwt-accum')) <= 1e-5 * loss('hlm-cwt-accum'))).toBe(false);
  // The same rows: two micro-batches of B/2 where DDP's ranks took B/2 each of one batch of B.
  expect((accum.hlm.data as { position: number }).position).toBe(2);
  // The comparison can fail: CWT over the whole batch (every target a negative of every other) is another step.
  expect(updateErrors(init.params, got.params, hlmUpdate(init, [whole]), decoder).err).toBeGreaterThan(1e-2);
}, 180_000);

test('encoder: hlm masking on 2 ranks; CE equals hlm, CWT the rank-weighted float64 reference', async () => {
  const o = { ...contract, arch: 'encoder', init: join(dir, 'init-enc'), batchSize: B } as const;
  await hlm({ ...o, out: join(dir, 'hlm-enc-ce') });
  await ddp(flags({ ...o, out: join(dir, 'ddp-enc-ce'), data: [join(dir, 'data.bin')] }));
  await ddp(flags({ ...o, objective: 'cwt', out: join(dir, 'ddp-enc-cwt'), data: [join(dir, 'data.bin')] }));
  const [init, want, gotCe, gotCwt] = await Promise.all([
    loadCheckpoint(join(dir, 'init-enc')),
    ck('hlm-enc-ce'),
    ck('ddp-enc-ce'),
    ck('ddp-enc-cwt'),
  ]);
  const ce = updateErrors(init.params, gotCe.params, hlmUpdate(init, [want]), encoder);
  report('CE encoder', ce);
  expect(!(ce.err <= TOL)).toBe(false);

  // hlm's masked batch 0 at step 1, split by rank; each rank's CWT mean gradient weighted by its share of targets.
  const src = BatchSource.open([join(dir, 'data.bin')], { batchSize: B, seqLen: T, order: 'sequential', seed: 1 });
  const masked = maskTokens(src.batchAt(0).inputs, {
    seed: 1,
    step: 1,
    maskId: EOT + 1,
    vocabSize: EOT + 1,
    specialIds: [EOT],
  });
  src.close();
  const K = masked.positions.length;
  const named: Record<string, Float64Array> = {};
  for (const t of init.layout.tensors)
    named[t.name] = Float64Array.from(init.params.subarray(t.offset, t.offset + t.size));
  const expected: Record<string, Float64Array> = {};
  const counts: number[] = [];
  for (let r = 0; r < 2; r++) {
    const rows = (a: Int32Array) => a.subarray((r * B * T) / 2, ((r + 1) * B * T) / 2);
    const g = gpt2LossAndGrads(named, encoder, rows(masked.inputs), rows(masked.targets), B / 2, T, 'cwt');
    counts.push(g.count);
    for (const [name, grad] of Object.entries(g.grads)) {
      expected[name] ??= new Float64Array(grad.length);
      for (let i = 0; i < grad.length; i++) expected[name][i] -= (LR * g.count * grad[i]) / K;
    }
  }
  expect(counts[0] + counts[1]).toBe(K);
  const cwt = updateErrors(init.params, gotCwt.params, (name) => expected[name], encoder);
  report(`CWT encoder (rank targets ${counts.join(' + ')})`, cwt);
  expect(!(cwt.err <= TOL)).toBe(false);
}, 180_000);

test('AdamW: DDP continues an hlm checkpoint as hlm does, and hlm continues the DDP one', async () => {
  const o: Partial<PretrainOptions> = {
    out: join(dir, 'adam'),
    batchSize: B,
    seqLen: T,
    lr: 1e-2,
    warmup: 1,
    schedule: 'cosine',
    scheduleSteps: 4,
    gradClip: 0.5,
    weightDecay: 0.1,
    order: 'shuffled',
    seed: 3,
    data: [join(dir, 'corpus.txt')], // text: hlm tokenises it, train_ddp.py reads hlm's cached shards
  };
  await hlm({ ...o, init: join(dir, 'init'), steps: 1 });
  const step1 = await ck('adam');
  cpSync(join(dir, 'adam'), join(dir, 'adam-hlm'), { recursive: true });
  await ddp(flags({ ...o, resume: true, steps: 2 }));
  await hlm({ ...o, out: join(dir, 'adam-hlm'), resume: true, steps: 2 });
  const [got, want] = await Promise.all([ck('adam'), ck('adam-hlm')]);
  expect(got.hlm.step).toBe(2);
  expect(got.hlm.data).toEqual(want.hlm.data);
  expect(got.optimizer!.step).toBe(2);
  // Step 2 from the same step-1 checkpoint (moments, clipping, decay, shuffled batch 1): weights and both moments.
  const w = updateErrors(step1.params, got.params, hlmUpdate(step1, [want]), decoder);
  report('AdamW step 2 after hlm step 1', w);
  // Looser than SGD's: Adam divides by √v, so a direction whose gradient is zero but for rounding (the attention
  // key bias: softmax ignores a shift) moves by rounding noise over eps in either implementation.
  expect(!(w.err <= 1e-3)).toBe(false);
  const moments = (['m', 'v'] as const).map((k) => relErr(got.optimizer![k], want.optimizer![k]));
  console.log(
    `AdamW moments after step 2: relative L2 error m ${moments[0].toExponential(2)}, v ${moments[1].toExponential(2)}`,
  );
  for (const e of moments) expect(!(e <= TOL)).toBe(false);
  // hlm's layout byte for byte: the same safetensors headers (names, shapes, offsets, metadata).
  for (const f of ['model.safetensors', 'optimizer.safetensors']) {
    const head = (run: string) => {
      const b = readFileSync(join(dir, run, 'checkpoint', f));
      return b.subarray(0, 8 + Number(b.readBigUInt64LE(0))).toString();
    };
    expect(head('adam')).toBe(head('adam-hlm'));
  }
  await hlm({ ...o, resume: true, steps: 3 });
  const third = await ck('adam');
  expect(third.hlm.step).toBe(3);
  expect(third.optimizer!.step).toBe(3);
  expect(readMetrics(join(dir, 'adam')).map((m) => m.step)).toEqual([1, 2, 3]);
}, 180_000);

test('refusals are one clear line', () => {
  // One run of the command for the exit status; the other refusals through main() in one process (one torch import).
  const text = join(dir, 'corpus-new.txt');
  writeFileSync(text, 'Some text hlm never tokenised.\n');
  const r = run(python, ['scale/train_ddp.py', '--init', join(dir, 'init'), '--out', join(dir, 'no'), '--data', text]);
  expect(r.status).toBe(1);
  expect(r.out.trim()).toMatch(new RegExp(`^hlm: --data ${text}: text that hlm has not tokenised \\(no entry in `));
  const cases = [
    ['--data', join(dir, 'data.bin')],
    ['--init', join(dir, 'init'), '--eval-every', '5'],
    ['--init', join(dir, 'init'), '--resume'],
  ];
  const code = `import sys; sys.path.insert(0, 'scale'); import json, train_ddp
for args in json.loads(sys.argv[1]): print('exit', train_ddp.main(args), file=sys.stderr)`;
  const many = run(python, ['-c', code, JSON.stringify(cases)]);
  expect(many.out.split('\n').filter(Boolean)).toEqual([
    'hlm: scale/train_ddp.py continues an hlm run: give --init <checkpoint dir> or --resume',
    'exit 1',
    'hlm: --eval-every is not taken by scale/train_ddp.py: no validation here: run hlm pretrain --resume or ' +
      'eval-lambada on the checkpoint',
    'exit 1',
    'hlm: --init starts a new run and --resume continues <out>/checkpoint: give one of them',
    'exit 1',
  ]);
});
