// pretrain --save-dtype f16: the checkpoints' model.safetensors is F16, and --resume still continues bit for bit
// (from the float32 weights kept in optimizer.safetensors), for AdamW and for SGD; without them it is refused.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTestGpu } from './helpers/gpu.js';
import type { Gpu } from '../src/gpu/device.js';
import { pretrain, readMetrics, type PretrainOptions } from '../src/train/pretrain.js';
import { MASTER_TENSOR, loadCheckpoint } from '../src/model/checkpoint.js';
import { parseSafetensors, serializeSafetensors } from '../src/model/safetensors.js';
import { roundF16 } from '../src/util/f16.js';
import { repoRoot } from './helpers/cli.js';
import { writeCorpus } from './helpers/tiny-run.js';

let gpu: Gpu;
let dir: string;
let corpus: string;
beforeAll(async () => {
  gpu = await openTestGpu();
  dir = mkdtempSync(join(tmpdir(), 'hlm-save-dtype-'));
  process.env.HLM_CACHE_DIR = join(dir, 'cache');
  corpus = writeCorpus(dir, 30_000);
});
afterAll(() => {
  gpu?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

function opts(out: string, o: Partial<PretrainOptions>): PretrainOptions {
  return {
    ...{ arch: 'decoder', objective: 'ce', preset: 'tiny', data: [corpus], out, resume: false },
    set: ['n_layer=1', 'n_embd=16', 'n_head=2', 'n_positions=16'],
    ...{ steps: 4, batchSize: 2, seqLen: 15, lr: 1e-2, optimizer: 'adamw', weightDecay: 0.1, warmup: 1 },
    ...{ schedule: 'cosine', gradClip: 1, order: 'shuffled', seed: 4, evalEvery: 0, evalBatches: 1 },
    ...{ saveEvery: 0, logEvery: 2 },
    ...o,
  };
}

const bits = (a: Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);
const losses = (out: string) =>
  readMetrics(out)
    .filter((m) => 'loss' in m)
    .map((m) => m.loss);

test.each(['adamw', 'sgd'] as const)(
  '%s: 2 steps saved as f16, then --resume to 4, gives bit for bit the weights of 4 steps at once',
  async (optimizer) => {
    const whole = join(dir, `whole-${optimizer}`);
    const split = join(dir, `split-${optimizer}`);
    await pretrain(gpu, opts(whole, { optimizer }));
    await pretrain(gpu, opts(split, { optimizer, steps: 2, scheduleSteps: 4, saveDtype: 'f16' }));
    const half = parseSafetensors(readFileSync(join(split, 'checkpoint', 'model.safetensors')), 'model');
    expect(new Set([...half.tensors.values()].map((t) => t.dtype))).toEqual(new Set(['F16']));
    await pretrain(gpu, opts(split, { optimizer, resume: true, saveDtype: 'f16' }));
    const a = await loadCheckpoint(join(whole, 'checkpoint'));
    const b = await loadCheckpoint(join(split, 'checkpoint'), { weights: 'exact' });
    expect(b.hlm.step).toBe(4);
    expect(bits(b.params).equals(bits(a.params))).toBe(true);
    if (optimizer === 'adamw') expect(bits(b.optimizer!.v).equals(bits(a.optimizer!.v))).toBe(true);
    expect(losses(split)).toEqual(losses(whole));
    // What inference reads is the f16 rounding of those weights.
    const served = await loadCheckpoint(join(split, 'checkpoint'), { optimizer: false });
    expect(bits(served.params).equals(bits(a.params.map(roundF16)))).toBe(true);
    // run.json repeats the setting.
    expect(JSON.parse(readFileSync(join(split, 'checkpoint', 'run.json'), 'utf8')).save_dtype).toBe('f16');
  },
  180_000,
);

/** scale/hlm_checkpoint.py's load_checkpoint(dir, optimizer=True) (what train_ddp.py --resume reads), in Python. */
function pythonLoad(ck: string): { sha?: string; error?: string } {
  const code = [
    'import sys, json, hashlib',
    "sys.path.insert(0, 'scale')",
    'from hlm_checkpoint import load_checkpoint, flatten, CheckpointError',
    'try:',
    '    ck = load_checkpoint(sys.argv[1], optimizer=True)',
    "    print(json.dumps({'sha': hashlib.sha256(flatten(ck['config'], ck['params']).tobytes()).hexdigest()}))",
    'except CheckpointError as e:',
    "    print(json.dumps({'error': str(e)}))",
  ].join('\n');
  const python = process.env.HLM_TORCH_PYTHON ?? '/usr/bin/python3';
  const r = spawnSync(python, ['-c', code, ck], { cwd: repoRoot(), encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${python} (needs numpy): ${r.stderr}`);
  return JSON.parse(r.stdout);
}
const sha = (a: Float32Array) => createHash('sha256').update(bits(a)).digest('hex');

test('scale/hlm_checkpoint.py (train_ddp.py --resume) reads the float32 weights of an f16 save too', async () => {
  for (const optimizer of ['adamw', 'sgd']) {
    const ck = join(dir, `split-${optimizer}`, 'checkpoint');
    expect(pythonLoad(ck)).toEqual({ sha: sha((await loadCheckpoint(ck, { weights: 'exact' })).params) });
  }
});

test('--resume from f16 weights without the float32 ones is refused, naming the file, changing nothing', async () => {
  const out = join(dir, 'split-adamw');
  const ck = join(out, 'checkpoint');
  const optPath = join(ck, 'optimizer.safetensors');
  const opt = parseSafetensors(readFileSync(optPath), optPath);
  const kept = Object.fromEntries(
    [...opt.tensors].filter(([n]) => n !== MASTER_TENSOR).map(([n, t]) => [n, { ...t, data: t.bytes }]),
  );
  writeFileSync(optPath, serializeSafetensors(kept, opt.metadata));
  const before = readFileSync(join(out, 'metrics.jsonl'));
  await expect(pretrain(gpu, opts(out, { steps: 6, resume: true }))).rejects.toThrow(
    new RegExp(`^${join(ck, 'model.safetensors')} holds F16 weights .* bit for bit .*--init`),
  );
  expect(readFileSync(join(out, 'metrics.jsonl')).equals(before)).toBe(true);
  expect((await loadCheckpoint(ck, { optimizer: false })).hlm.step).toBe(4);
  const py = pythonLoad(ck).error ?? '';
  expect(py).toMatch(new RegExp(`^${join(ck, 'model.safetensors')} holds F16 weights .* bit for bit`));
});
