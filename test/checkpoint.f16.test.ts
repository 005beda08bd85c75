// --save-dtype f16: model.safetensors in IEEE binary16 (half the bytes, for inference), the float32 weights kept in
// optimizer.safetensors for a resume that continues bit for bit, and the refusals around it.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { preset, type ModelConfig } from '../src/model/config.js';
import { initParams, paramLayout } from '../src/model/params.js';
import { parseSafetensors, serializeSafetensors } from '../src/model/safetensors.js';
import { MASTER_TENSOR, loadCheckpoint, saveCheckpoint, type SaveDtype } from '../src/model/checkpoint.js';
import { f16Bits, roundF16 } from '../src/util/f16.js';
import { makeRandom, refusal } from './helpers/check.js';

// Data dominates the file (the header is a few kB), as in any real model.
const CONFIG: ModelConfig = {
  ...preset('tiny'),
  vocab_size: 301,
  n_positions: 17,
  n_embd: 32,
  n_head: 4,
  n_layer: 2,
  eos_token_id: 300,
};
const layout = paramLayout(CONFIG);
let root: string;
beforeAll(() => (root = mkdtempSync(join(tmpdir(), 'hlm-ckpt-f16-'))));
afterAll(() => rmSync(root, { recursive: true, force: true }));

const bytesEqual = (a: Float32Array, b: Float32Array) =>
  a.length === b.length &&
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));
const rounded = (p: Float32Array) => p.map(roundF16);

/** Weights with a spread of magnitudes: normal ones, values at f16's edges, subnormals, ties, and -0. */
function params(seed: number): Float32Array {
  const p = initParams(CONFIG, seed);
  const r = makeRandom(seed);
  const wte = layout.byName.get('transformer.wte.weight')!;
  const special = [65504, -65504, 65519, 6e-8, -3e-6, 1 + 2 ** -11, 1 + 3 * 2 ** -11, -0, 1e-9];
  special.forEach((x, i) => (p[wte.offset + i] = x));
  const big = r.normal(64);
  for (let i = 0; i < 64; i++) p[wte.offset + 100 + i] = big[i] * 1000;
  return p;
}

async function save(name: string, dtype: SaveDtype, extra: { optimizer?: boolean; master?: boolean } = {}) {
  const dir = join(root, name);
  const p = params(5);
  const r = makeRandom(6);
  const optimizer = extra.optimizer
    ? { step: 7, m: r.normal(layout.total), v: r.uniform(layout.total, 0, 1) }
    : undefined;
  await saveCheckpoint(dir, { config: CONFIG, params: p, optimizer, dtype, master: extra.master });
  return { dir, params: p, optimizer };
}

test('f16 writes every tensor of model.safetensors as F16, each value the f16Bits of the f32 weight', async () => {
  const f32 = await save('f32', 'f32');
  const f16 = await save('f16', 'f16');
  const file = parseSafetensors(readFileSync(join(f16.dir, 'model.safetensors')), 'model');
  expect(file.metadata).toEqual({ format: 'pt' });
  expect([...file.tensors.keys()].sort()).toEqual(layout.tensors.map((t) => t.name).sort());
  for (const spec of layout.tensors) {
    const t = file.tensors.get(spec.name)!;
    expect(t.dtype).toBe('F16');
    expect(t.shape).toEqual(spec.shape);
    const bits = new Uint16Array(new Uint8Array(t.bytes).buffer);
    const want = Uint16Array.from(f16.params.subarray(spec.offset, spec.offset + spec.size), (x) => f16Bits(x));
    expect(Buffer.from(bits.buffer).equals(Buffer.from(want.buffer))).toBe(true);
  }
  // Half the data; the header is the same length give or take the offsets' digits.
  const size = (d: string) => statSync(join(d, 'model.safetensors')).size;
  const ratio = size(f16.dir) / size(f32.dir);
  expect(Math.abs(ratio - 0.5)).toBeLessThan(0.01);
  expect(JSON.parse(readFileSync(join(f16.dir, 'config.json'), 'utf8')).torch_dtype).toBe('float16');
  expect(JSON.parse(readFileSync(join(f32.dir, 'config.json'), 'utf8')).torch_dtype).toBe('float32');
  // Nothing asked for the float32 weights: no optimizer file, and loading widens the halves.
  expect(existsSync(join(f16.dir, 'optimizer.safetensors'))).toBe(false);
  const loaded = await loadCheckpoint(f16.dir);
  expect(bytesEqual(loaded.params, rounded(f16.params))).toBe(true);
  expect(Object.is(loaded.params[layout.byName.get('transformer.wte.weight')!.offset + 7], -0)).toBe(true);
});

test('with master, optimizer.safetensors keeps the float32 weights: loads get them, inference the halves', async () => {
  const ck = await save('master', 'f16', { optimizer: true, master: true });
  const opt = parseSafetensors(readFileSync(join(ck.dir, 'optimizer.safetensors')), 'optimizer');
  expect([...opt.tensors.keys()].sort()).toEqual(['exp_avg', 'exp_avg_sq', MASTER_TENSOR, 'step']);
  expect(opt.tensors.get(MASTER_TENSOR)!.dtype).toBe('F32');
  for (const weights of [undefined, 'master', 'exact'] as const) {
    const exact = await loadCheckpoint(ck.dir, { weights });
    expect(bytesEqual(exact.params, ck.params)).toBe(true);
    expect(exact.params.buffer.byteLength).toBe(ck.params.byteLength); // its own buffer, not a view of the file
    expect(exact.optimizer!.step).toBe(7);
    expect(bytesEqual(exact.optimizer!.m, ck.optimizer!.m)).toBe(true);
  }
  const inference = await loadCheckpoint(ck.dir, { optimizer: false });
  expect(bytesEqual(inference.params, rounded(ck.params))).toBe(true);
  expect(inference.optimizer).toBeUndefined();
  const masterOnly = await loadCheckpoint(ck.dir, { optimizer: false, weights: 'master' });
  expect(bytesEqual(masterOnly.params, ck.params)).toBe(true);
  expect(masterOnly.optimizer).toBeUndefined();
  // An f32 save has nothing to keep: model.safetensors is exact.
  const plain = await save('plain', 'f32', { optimizer: true, master: true });
  const plainOpt = parseSafetensors(readFileSync(join(plain.dir, 'optimizer.safetensors')), 'optimizer');
  expect(plainOpt.tensors.has(MASTER_TENSOR)).toBe(false);
});

test('--init into another configuration (an untied head) takes the master weights by name', async () => {
  const ck = await save('master', 'f16', { optimizer: true, master: true }); // the same contents again
  const untied = { ...CONFIG, tie_word_embeddings: false };
  const c = await loadCheckpoint(ck.dir, {
    optimizer: false,
    weights: 'master',
    config: untied,
    initMissing: { seed: 1, match: (n) => n === 'lm_head.weight' },
  });
  expect(c.initialized).toEqual(['lm_head.weight']);
  for (const spec of layout.tensors) {
    const got = c.params.subarray(c.layout.byName.get(spec.name)!.offset).subarray(0, spec.size);
    expect([spec.name, bytesEqual(got, ck.params.subarray(spec.offset, spec.offset + spec.size))]).toEqual([
      spec.name,
      true,
    ]);
  }
});

test('a run without moments (SGD) keeps only the master weights in optimizer.safetensors', async () => {
  const ck = await save('sgd', 'f16', { master: true });
  const opt = parseSafetensors(readFileSync(join(ck.dir, 'optimizer.safetensors')), 'optimizer');
  expect([...opt.tensors.keys()]).toEqual([MASTER_TENSOR]);
  const loaded = await loadCheckpoint(ck.dir, { weights: 'exact' });
  expect(bytesEqual(loaded.params, ck.params)).toBe(true);
  expect(loaded.optimizer).toBeUndefined();
});

test('resuming (exact) from f16 weights without the float32 ones is refused, naming the file', async () => {
  const ck = await save('no-master', 'f16', { optimizer: true });
  const msg = await refusal(loadCheckpoint(ck.dir, { weights: 'exact' }));
  expect(msg).toContain(join(ck.dir, 'model.safetensors'));
  expect(msg).toMatch(/holds F16 weights \(tensor '[^']+'\)/);
  expect(msg).toContain(`has no float32 ${MASTER_TENSOR}`);
  expect(msg).toMatch(/bit for bit/);
  // Without the optimizer file at all, the same.
  rmSync(join(ck.dir, 'optimizer.safetensors'));
  expect(await refusal(loadCheckpoint(ck.dir, { weights: 'exact' }))).toContain(join(ck.dir, 'model.safetensors'));
});

test('a model.safetensors that is not the rounding of the master weights is refused', async () => {
  const a = await save('pair-a', 'f16', { optimizer: true, master: true });
  const other = join(root, 'pair-b');
  const p = params(9);
  await saveCheckpoint(other, { config: CONFIG, params: p, dtype: 'f16' });
  writeFileSync(join(a.dir, 'model.safetensors'), readFileSync(join(other, 'model.safetensors')));
  const msg = await refusal(loadCheckpoint(a.dir, { weights: 'exact' }));
  expect(msg).toContain(join(a.dir, 'model.safetensors'));
  expect(msg).toMatch(/not from one save/);
});

test('a weight float16 cannot hold is refused before anything is written', async () => {
  const dir = join(root, 'overflow', 'ck');
  const p = params(5);
  const spec = layout.byName.get('transformer.h.1.mlp.c_fc.weight')!;
  p[spec.offset + 11] = 65520; // rounds to Inf in binary16
  const msg = await refusal(saveCheckpoint(dir, { config: CONFIG, params: p, dtype: 'f16', master: true }));
  expect(msg).toContain(`cannot save checkpoint ${dir} with --save-dtype f16`);
  expect(msg).toContain("tensor 'transformer.h.1.mlp.c_fc.weight' holds 65520 at element 11");
  expect(existsSync(dir)).toBe(false);
  expect(existsSync(dirname(dir)) ? readdirSync(dirname(dir)) : []).toEqual([]);
  // The same weights save as f32.
  await saveCheckpoint(dir, { config: CONFIG, params: p, dtype: 'f32' });
  expect(bytesEqual((await loadCheckpoint(dir)).params, p)).toBe(true);
});

test('an unknown dtype from a library caller is refused', async () => {
  const dir = join(root, 'bf16');
  const msg = await refusal(
    saveCheckpoint(dir, { config: CONFIG, params: params(1), dtype: 'bf16' as unknown as SaveDtype }),
  );
  expect(msg).toContain('dtype must be f32 or f16, got bf16');
  expect(existsSync(dir)).toBe(false);
});

test('the F16 file is byte for byte what the reference serializer writes for those tensors', () => {
  const dir = join(root, 'f16');
  const written = readFileSync(join(dir, 'model.safetensors'));
  const p = params(5);
  const tensors = Object.fromEntries(
    layout.tensors.map((t) => [
      t.name,
      {
        dtype: 'F16' as const,
        shape: t.shape,
        data: Uint16Array.from(p.subarray(t.offset, t.offset + t.size), (x) => f16Bits(x)),
      },
    ]),
  );
  expect(Buffer.from(serializeSafetensors(tensors, { format: 'pt' })).equals(written)).toBe(true);
});
