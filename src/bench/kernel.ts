// The kernel suite: the device's measured peaks first (FMA and copy kernels), then each
// training kernel on the transformer's shapes: matmul (square, and every linear layer's
// forward, dx and dW products, i.e. each transpose; matmul-f16: the square NN product on packed
// f16 operands, mixed precision's), the CE and CWT loss heads side by side,
// the whitening covariance, attention, LayerNorm and AdamW. Every case checks one fresh
// repetition against its float64 reference: on its own inputs when that costs at most
// REF_BUDGET multiply-adds, else on a smaller case named in the record (check.shape).
// --quick uses the tiny preset's shapes (4×32 tokens, d = 64); the full suite the small
// preset's (8×512 tokens, d = 512), the same on every device so that runs compare.
import type { Dispatch, Gpu } from '../gpu/device.js';
import type { TensorRef } from '../kernels/types.js';
import { relErr } from '../util/stats.js';
import { streamRng } from '../data/random.js';
import { attentionBackward, attentionForward, createLoneAttention } from '../kernels/attention.js';
import { castF16 } from '../kernels/cast.js';
import { crossEntropyFlops, crossEntropyHead } from '../kernels/crossentropy.js';
import { layerNormBackward, layerNormForward } from '../kernels/layernorm.js';
import { matmul, matmulFlops } from '../kernels/matmul.js';
import { AdamW } from '../kernels/optimizer.js';
import { peakCopy, peakCopyBytes, peakFma, peakFmaFlops, peakFmaReference } from '../kernels/peak.js';
import { weightedMoments } from '../kernels/whiten.js';
import { preset } from '../model/config.js';
import { paramCount } from '../model/params.js';
import { attention as attentionRef, attentionBackward as attentionBackwardRef } from '../reference/attention.js';
import { crossEntropyTied, crossEntropyTiedBackward } from '../reference/crossentropy.js';
import { cwtLoss, cwtLossBackward } from '../reference/cwt.js';
import { layerNorm as layerNormRef, layerNormBackward as layerNormBackwardRef } from '../reference/layernorm.js';
import { matmul as matmulRef } from '../reference/matmul.js';
import { adamwStep } from '../reference/optimizer.js';
import { roundF16 } from '../util/f16.js';
import type { BenchCase, BenchContext, Prepared } from './harness.js';
import type { Check } from './record.js';
import { TRAIN_SHAPES } from './train.js';

/** Most float64 multiply-adds a reference may cost on the benchmark's own inputs (~1 s in JS). */
const REF_BUDGET = 3e8;
const SEED = 20240520;

/**
 * The shapes the suite runs: the tiny preset's (--quick) or the small preset's. The full suite's layer products,
 * attention, loss heads and LayerNorm take the small preset's train step (`hlm bench --suite train`, 16×512), so that
 * their isolated rates read beside the same dispatches' in-step times (`--top`).
 */
export function kernelShapes(quick: boolean) {
  const small = preset('small');
  const step = TRAIN_SHAPES.small;
  return quick
    ? {
        square: 256,
        rows: 128,
        B: 4,
        T: 32,
        d: 64,
        nHead: 4,
        V: 50257,
        whitenRows: 4096,
        adamN: 1 << 20,
        fma: { n: 1 << 14, iters: 1024 },
        copy: 1 << 20,
      }
    : {
        square: 2048,
        rows: step.B * step.T,
        B: step.B,
        T: step.T,
        d: small.n_embd,
        nHead: small.n_head,
        V: 50257,
        whitenRows: 50257,
        adamN: paramCount(small),
        fma: { n: 1 << 19, iters: 2048 },
        copy: 1 << 24,
      };
}

function random(n: number, next: () => number, scale = 1): Float32Array {
  return Float32Array.from({ length: n }, () => scale * (2 * next() - 1));
}

function checked(reference: string, got: ArrayLike<number>, want: ArrayLike<number>, tolerance: number): Check {
  const value = relErr(got, want);
  return {
    reference,
    metric: 'relative L2 error',
    value: Number.isFinite(value) ? value : null,
    tolerance,
    ok: value <= tolerance,
  };
}

const concat = (...xs: ArrayLike<number>[]) => Float64Array.from(xs.flatMap((x) => Array.from(x)));

/** A case whose reference runs on its own inputs when cheap enough, else on `small`. */
function kernelCase(
  name: string,
  test: string,
  params: BenchCase['params'],
  build: BenchCase['build'],
  refCost: number,
  small?: { shape: string; build: BenchCase['build'] },
): BenchCase {
  return { suite: 'kernel', name, test, params, build, checkOn: refCost > REF_BUDGET ? small : undefined };
}

/** Buffers freed and dispatches released by dispose. */
function owner(gpu: Gpu) {
  const bufs: GPUBuffer[] = [];
  const ds: Dispatch[] = [];
  return {
    up: (label: string, data: ArrayBufferView) => {
      const b = gpu.upload(label, data);
      bufs.push(b);
      return b;
    },
    buf: (label: string, bytes: number) => {
      const b = gpu.buffer(label, bytes);
      bufs.push(b);
      return b;
    },
    keep: <T extends Dispatch | Dispatch[]>(d: T): T => {
      ds.push(...([] as Dispatch[]).concat(d));
      return d;
    },
    dispose: () => {
      gpu.release(...ds);
      gpu.free(...bufs);
    },
  };
}

function peakCases(s: ReturnType<typeof kernelShapes>): BenchCase[] {
  const { n, iters } = s.fma;
  const fma: BenchCase = {
    suite: 'kernel',
    name: 'peak',
    test: `fma ${n}x${iters}`,
    params: { invocations: n, iters },
    peak: 'flops',
    build: async ({ gpu }) => {
      const o = owner(gpu);
      const out = o.buf('peak fma out', n * 4);
      const d = o.keep(await peakFma(gpu, { n, iters, out }));
      return {
        step: () => gpu.submit([d], 'bench peak fma'),
        work: { flops: peakFmaFlops({ n, iters }), bytes: n * 4 },
        unit: 'GFLOP/s',
        dispose: o.dispose,
        check: async () => {
          await gpu.run([d]);
          const got = await gpu.readF32(out, 0, n);
          const ref = Array.from({ length: 1024 }, (_, i) => peakFmaReference(i, iters));
          return checked(
            'peakFmaReference (float64 recurrence)',
            got,
            Float64Array.from({ length: n }, (_, i) => ref[i % 1024]),
            1e-5,
          );
        },
      };
    },
  };
  const copy: BenchCase = {
    suite: 'kernel',
    name: 'peak',
    test: `copy ${(s.copy * 16) / 2 ** 20} MiB`,
    params: { vec4s: s.copy },
    peak: 'bytes',
    build: async ({ gpu }) => {
      const o = owner(gpu);
      const data = random(4 * s.copy, streamRng(SEED, 1));
      const src = o.up('peak copy src', data);
      const dst = o.buf('peak copy dst', data.byteLength);
      const d = o.keep(await peakCopy(gpu, { n4: s.copy, src, dst }));
      return {
        step: () => gpu.submit(d, 'bench peak copy'),
        work: { bytes: peakCopyBytes(s.copy) },
        unit: 'GB/s',
        dispose: o.dispose,
        check: async () => {
          gpu.write(dst, new Float32Array(4 * s.copy));
          await gpu.run(d);
          return checked('the source (exact copy)', await gpu.readF32(dst), data, 0);
        },
      };
    },
  };
  return [fma, copy];
}

/** A matmul case; with `f16`, A and B are packed f16 (cast once at build, not timed) and the name is matmul-f16. */
function matmulCase(
  label: string,
  M: number,
  N: number,
  K: number,
  transA: boolean,
  transB: boolean,
  f16 = false,
): BenchCase {
  const t = `${transA ? 'T' : 'N'}${transB ? 'T' : 'N'}`;
  const make =
    (M: number, N: number, K: number) =>
    async ({ gpu }: BenchContext): Promise<Prepared> => {
      const o = owner(gpu);
      const next = streamRng(SEED, M, N, K);
      const a = random(M * K, next);
      const b = random(K * N, next);
      let A: TensorRef = { buffer: o.up('bench A', a) };
      let B: TensorRef = { buffer: o.up('bench B', b) };
      if (f16) {
        const A16 = { buffer: o.buf('bench A f16', 2 * M * K), dtype: 'f16' } as const;
        const B16 = { buffer: o.buf('bench B f16', 2 * K * N), dtype: 'f16' } as const;
        const casts = [
          o.keep(await castF16(gpu, { n: M * K, src: A, dst: A16 })),
          o.keep(await castF16(gpu, { n: K * N, src: B, dst: B16 })),
        ];
        await gpu.run(casts, 'bench matmul f16 operands');
        [A, B] = [A16, B16];
      }
      const C = o.buf('bench C', M * N * 4);
      const d = o.keep(await matmul(gpu, { M, N, K, transA, transB, a: A, b: B, c: { buffer: C } }));
      // The f16 kernels the product took (subgroup-matrix where the device has them and its check passed).
      if (f16) params.f16_kernels = gpu.f16Kernels;
      const [ra, rb] = f16 ? [a, b].map((x) => x.map(roundF16)) : [a, b];
      return {
        step: () => gpu.submit(d, 'bench matmul'),
        work: { flops: matmulFlops({ M, N, K }), bytes: (f16 ? 2 : 4) * (M * K + K * N) + 4 * M * N },
        unit: 'GFLOP/s',
        dispose: o.dispose,
        check: async () => {
          await gpu.run(d);
          return checked(
            `src/reference/matmul.ts (float64${f16 ? ', on the f16-rounded operands' : ''})`,
            await gpu.readF32(C, 0, M * N),
            matmulRef(ra, rb, M, N, K, transA, transB),
            1e-5,
          );
        },
      };
    };
  const [m, n, k] = [M, N, K].map((v) => Math.min(v, 129));
  const params: Record<string, string | number | boolean> = {
    M,
    N,
    K,
    transA,
    transB,
    ...(f16 ? { operands: 'f16' } : {}),
  };
  const name = f16 ? 'matmul-f16' : 'matmul';
  return kernelCase(name, `${label} ${M}x${N}x${K} ${t}`, params, make(M, N, K), M * N * K, {
    shape: `${m}x${n}x${k} ${t}`,
    build: make(m, n, k),
  });
}

function matmulCases(s: ReturnType<typeof kernelShapes>): BenchCase[] {
  const cases: BenchCase[] = [];
  for (const [ta, tb] of [
    [false, false],
    [false, true],
    [true, false],
    [true, true],
  ])
    cases.push(matmulCase('square', s.square, s.square, s.square, ta, tb));
  // The same square product reading packed-f16 operands (mixed precision), beside the f32 one.
  cases.push(matmulCase('square', s.square, s.square, s.square, false, false, true));
  // Each linear layer y = x·W (rows × in → out): forward NN, dx = dY·Wᵀ (NT), dW = xᵀ·dY (TN).
  const { rows, d } = s;
  for (const [layer, nIn, nOut] of [
    ['attn.c_attn', d, 3 * d],
    ['attn.c_proj', d, d],
    ['mlp.c_fc', d, 4 * d],
    ['mlp.c_proj', 4 * d, d],
  ] as const) {
    cases.push(matmulCase(`${layer} fwd`, rows, nOut, nIn, false, false));
    cases.push(matmulCase(`${layer} dx`, rows, nIn, nOut, false, true));
    cases.push(matmulCase(`${layer} dW`, nIn, nOut, rows, true, false));
  }
  return cases;
}

/**
 * The CE head (N rows × V vocabulary) and the CWT loss (K × K scores, its embeddings the K
 * targets'), forward and backward: the same kernels (src/kernels/crossentropy.ts: the fused forward on hardware
 * GPUs, matmul's on software adapters), the CWT one with the K gathered target embeddings as its "vocabulary" and
 * target k = k (src/model/heads.ts). `ce forward` is evaluation's head (losses and argmax; the fused forward stores no
 * logits, matmul's on software adapters a chunk at a time in a shared scratch).
 */
function lossCase(head: 'ce' | 'ce forward' | 'cwt', N: number, V: number, d: number): BenchCase {
  const grads = head !== 'ce forward';
  const make =
    (N: number, V: number) =>
    async ({ gpu }: BenchContext): Promise<Prepared> => {
      const o = owner(gpu);
      const next = streamRng(SEED, N, V, d);
      const h = random(N * d, next);
      const E = random(V * d, next, 0.5);
      const targets =
        head === 'cwt'
          ? Int32Array.from({ length: N }, (_, k) => k)
          : Int32Array.from({ length: N }, () => Math.floor(next() * V));
      const H = o.up('bench h', h);
      const W = o.up('bench E', E);
      const Tg = o.up('bench targets', targets);
      const L = o.buf('bench losses', N * 4);
      const S = o.up('bench loss scale', new Float32Array([1 / N]));
      const DH = o.buf('bench dh', N * d * 4);
      const DW = o.buf('bench dE', V * d * 4);
      const A = o.buf('bench argmax', N * 4);
      const ce = await crossEntropyHead(gpu, {
        N,
        V,
        d,
        h: { buffer: H },
        wte: { buffer: W },
        targets: { buffer: Tg },
        losses: { buffer: L },
        ...(grads ? { lossScale: { buffer: S }, dh: { buffer: DH }, dwte: { buffer: DW } } : { argmax: { buffer: A } }),
        label: `bench ${head}`,
      });
      o.keep(ce.dispatches);
      return {
        step: () => gpu.submit(ce.dispatches, `bench ${head} head`),
        work: { flops: crossEntropyFlops(N, V, d, { dh: grads, dwte: grads }) },
        unit: 'GFLOP/s',
        dispose: o.dispose,
        check: async () => {
          await gpu.run([{ clear: DW }, ...ce.dispatches]);
          const losses = await gpu.readF32(L, 0, N);
          if (!grads) {
            const f = crossEntropyTied(h, E, targets, N, V, d);
            return checked('src/reference/crossentropy.ts (float64): row losses', losses, f.nll, 1e-5);
          }
          const got = concat(losses, await gpu.readF32(DH, 0, N * d), await gpu.readF32(DW, 0, V * d));
          if (head === 'ce') {
            const f = crossEntropyTied(h, E, targets, N, V, d);
            const b = crossEntropyTiedBackward(1, h, E, targets, N, V, d);
            return checked(
              'src/reference/crossentropy.ts (float64): row losses, dh, dE',
              got,
              concat(f.nll, b.dh, b.dE),
              1e-4,
            );
          }
          const f = cwtLoss(h, E, targets, N, d);
          const b = cwtLossBackward(1, h, E, targets, N, d);
          const nll = Float64Array.from({ length: N }, (_, k) => f.lse[k] - f.scores[k * N + k]);
          return checked('src/reference/cwt.ts (float64): row losses, dh, dE', got, concat(nll, b.dh, b.dE), 1e-4);
        },
      };
    };
  const test = head === 'cwt' ? `cwt ${N}x${N}x${d}` : `${head} ${N}x${V}x${d}`;
  const [n, v] = head === 'cwt' ? [Math.min(N, 96), Math.min(V, 96)] : [Math.min(N, 32), Math.min(V, 1021)];
  return kernelCase('loss-head', test, { head, rows: N, V, d }, make(N, V), (grads ? 3 : 1) * N * V * d, {
    shape: head === 'cwt' ? `cwt ${n}x${n}x${d}` : `${head} ${n}x${v}x${d}`,
    build: make(n, v),
  });
}

/** The whitening moments of src/kernels/whiten.ts: weighted mean, centring, then WᵀW (d × d over n rows). */
function covarianceCase(n: number, d: number): BenchCase {
  const make =
    (n: number, d: number) =>
    async ({ gpu }: BenchContext): Promise<Prepared> => {
      const o = owner(gpu);
      const next = streamRng(SEED, n, d);
      const x = random(n * d, next);
      const raw = Float64Array.from({ length: n }, () => next() + 0.01);
      const total = raw.reduce((a, b) => a + b, 0);
      const w = Float32Array.from(raw, (v) => v / total);
      const X = o.up('bench x', x);
      const Wt = o.up('bench weights', w);
      const MU = o.buf('bench mean', d * 4);
      const WX = o.buf('bench weighted rows', n * d * 4);
      const C = o.buf('bench covariance', d * d * 4);
      const ds = o.keep(await weightedMoments(gpu, { n, d, x: X, w: Wt, mean: MU, scratch: WX, cov: C }));
      return {
        step: () => gpu.submit(ds, 'bench covariance'),
        work: { flops: 2 * n * d + 3 * n * d + 2 * n * d * d, bytes: 4 * (3 * n * d + n + d * d) },
        unit: 'GFLOP/s',
        dispose: o.dispose,
        check: async () => {
          await gpu.run(ds);
          const mu = new Float64Array(d);
          const cov = new Float64Array(d * d);
          const c = new Float64Array(d);
          for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mu[j] += w[i] * x[i * d + j];
          for (let i = 0; i < n; i++) {
            for (let j = 0; j < d; j++) c[j] = x[i * d + j] - mu[j];
            for (let j = 0; j < d; j++) for (let k = 0; k < d; k++) cov[j * d + k] += w[i] * c[j] * c[k];
          }
          return checked(
            'weighted covariance in float64 (Σ w_i (x_i − μ)(x_i − μ)ᵀ)',
            await gpu.readF32(C, 0, d * d),
            cov,
            1e-5,
          );
        },
      };
    };
  return kernelCase('covariance', `${n}x${d}`, { n, d }, make(n, d), n * d * d, {
    shape: `${Math.min(n, 2000)}x${Math.min(d, 64)}`,
    build: make(Math.min(n, 2000), Math.min(d, 64)),
  });
}

/**
 * Attention forward or backward (its forward run once at build), causal. FLOPs count the full T×T scores and their
 * products (4·B·T²·d forward, 8 backward), though the fused kernels skip the masked half: figures compare across
 * versions of the kernels.
 */
function attentionCase(pass: 'forward' | 'backward', B: number, T: number, d: number, nHead: number): BenchCase {
  const make =
    (B: number, T: number, d: number, nHead: number) =>
    async ({ gpu }: BenchContext): Promise<Prepared> => {
      const o = owner(gpu);
      const next = streamRng(SEED, B, T, d);
      const shape = { B, T, d, nHead };
      const qkv = random(B * T * 3 * d, next);
      const dout = random(B * T * d, next);
      const QKV = o.up('bench qkv', qkv);
      const DOUT = o.up('bench dout', dout);
      const OUT = o.buf('bench out', B * T * d * 4);
      const DQKV = o.buf('bench dqkv', 3 * B * T * d * 4);
      const { layer, scratch, free } = createLoneAttention(gpu, { ...shape, label: 'bench att' });
      const common = { ...shape, causal: true, qkv: { buffer: QKV }, layer, out: { buffer: OUT } };
      const fw = [o.keep(await attentionForward(gpu, common))];
      const bw = o.keep(
        await attentionBackward(gpu, { ...common, scratch, dout: { buffer: DOUT }, dqkv: { buffer: DQKV } }),
      );
      await gpu.run(fw, 'bench attention forward');
      const ds = pass === 'forward' ? fw : bw;
      return {
        step: () => gpu.submit(ds, `bench attention ${pass}`),
        work: { flops: (pass === 'forward' ? 4 : 8) * B * T * T * d },
        unit: 'GFLOP/s',
        dispose: () => {
          o.dispose();
          free();
        },
        check: async () => {
          await gpu.run(ds);
          if (pass === 'forward')
            return checked(
              'src/reference/attention.ts (float64), causal',
              await gpu.readF32(OUT, 0, B * T * d),
              attentionRef(qkv, B, T, d, nHead, { causal: true }).out,
              1e-5,
            );
          return checked(
            'src/reference/attention.ts (float64), causal',
            await gpu.readF32(DQKV, 0, 3 * B * T * d),
            attentionBackwardRef(dout, qkv, B, T, d, nHead, { causal: true }).dqkv,
            1e-5,
          );
        },
      };
    };
  return kernelCase(
    'attention',
    `${pass} B${B} T${T} d${d} h${nHead}`,
    { pass, B, T, d, nHead, causal: true },
    make(B, T, d, nHead),
    3 * B * T * T * d,
    { shape: `B2 T33 d64 h4`, build: make(2, 33, 64, 4) },
  );
}

/** LayerNorm forward or backward; bytes count the rows×cols streams read and written. */
function layerNormCase(pass: 'forward' | 'backward', rows: number, cols: number): BenchCase {
  const build = async ({ gpu }: BenchContext): Promise<Prepared> => {
    const o = owner(gpu);
    const next = streamRng(SEED, rows, cols);
    const x = random(rows * cols, next);
    const w = random(cols, next);
    const b = random(cols, next);
    const dout = random(rows * cols, next);
    const X = o.up('bench x', x);
    const P = o.up('bench ln params', Float32Array.from(concat(w, b)));
    const OUT = o.buf('bench out', rows * cols * 4);
    const ST = o.buf('bench stats', 2 * rows * 4);
    const DOUT = o.up('bench dout', dout);
    const DX = o.buf('bench dx', rows * cols * 4);
    const G = o.buf('bench dparams', 2 * cols * 4);
    const stats = { mean: { buffer: ST }, rstd: { buffer: ST, offset: rows } };
    const fw = o.keep(
      await layerNormForward(gpu, {
        rows,
        cols,
        eps: 1e-5,
        x: { buffer: X },
        weight: { buffer: P },
        bias: { buffer: P, offset: cols },
        out: { buffer: OUT },
        ...stats,
      }),
    );
    const bw = o.keep(
      await layerNormBackward(gpu, {
        rows,
        cols,
        dout: { buffer: DOUT },
        x: { buffer: X },
        weight: { buffer: P },
        ...stats,
        dx: { buffer: DX },
        dweight: { buffer: G },
        dbias: { buffer: G, offset: cols },
      }),
    );
    await gpu.run([fw], 'bench layernorm forward');
    const ds = pass === 'forward' ? [fw] : bw;
    return {
      step: () => gpu.submit(ds, `bench layernorm ${pass}`),
      unit: 'GB/s',
      dispose: o.dispose,
      work: {
        bytes: 4 * (pass === 'forward' ? 2 * rows * cols + 2 * cols + 2 * rows : 4 * rows * cols + 3 * cols + 2 * rows),
      },
      check: async () => {
        if (pass === 'forward') {
          await gpu.run([fw]);
          return checked(
            'src/reference/layernorm.ts (float64)',
            await gpu.readF32(OUT, 0, rows * cols),
            layerNormRef(x, w, b, rows, cols).out,
            1e-5,
          );
        }
        await gpu.run([{ clear: DX }, { clear: G }, ...bw]);
        const ref = layerNormBackwardRef(dout, x, w, b, rows, cols);
        return checked(
          'src/reference/layernorm.ts (float64): dx, dweight, dbias',
          concat(await gpu.readF32(DX, 0, rows * cols), await gpu.readF32(G, 0, 2 * cols)),
          concat(ref.dx, ref.dweight, ref.dbias),
          1e-5,
        );
      },
    };
  };
  return kernelCase('layernorm', `${pass} ${rows}x${cols}`, { pass, rows, cols }, build, 0);
}

/** One AdamW step over n parameters; bytes: read p, g, m, v and write p, m, v. */
function adamwCase(n: number): BenchCase {
  const make =
    (n: number) =>
    async ({ gpu }: BenchContext): Promise<Prepared> => {
      const o = owner(gpu);
      const next = streamRng(SEED, n);
      const p = random(n, next);
      const g = random(n, next);
      const m = random(n, next, 0.1);
      const v = Float32Array.from(random(n, next, 0.1), Math.abs);
      const P = o.up('bench params', p);
      const G = o.up('bench grads', g);
      const M = o.up('bench m', m);
      const Vb = o.up('bench v', v);
      const hp = { lr: 1e-3, weightDecay: 0.01 };
      const opt = await AdamW.create(gpu, {
        n,
        params: { buffer: P },
        grads: { buffer: G },
        m: { buffer: M },
        v: { buffer: Vb },
        weightDecay: hp.weightDecay,
      });
      o.keep(opt.dispatches);
      opt.setStep(1, hp.lr);
      return {
        step: () => gpu.submit(opt.dispatches, 'bench adamw'),
        work: { bytes: 7 * 4 * n, flops: 15 * n },
        unit: 'GB/s',
        dispose: o.dispose,
        check: async () => {
          gpu.write(P, p);
          gpu.write(M, m);
          gpu.write(Vb, v);
          await gpu.run(opt.dispatches);
          const ref = adamwStep(p, g, m, v, 1, hp);
          return checked(
            'src/reference/optimizer.ts adamwStep (float64): params, m, v',
            concat(await gpu.readF32(P, 0, n), await gpu.readF32(M, 0, n), await gpu.readF32(Vb, 0, n)),
            concat(ref.param, ref.m, ref.v),
            1e-6,
          );
        },
      };
    };
  return kernelCase('adamw', `${n}`, { n }, make(n), 20 * n, { shape: '65537', build: make(65537) });
}

export function kernelCases(quick: boolean, square?: number): BenchCase[] {
  const s = { ...kernelShapes(quick), ...(square ? { square } : {}) };
  return [
    ...peakCases(s),
    ...matmulCases(s),
    lossCase('ce', s.rows, s.V, s.d),
    lossCase('ce forward', s.rows, s.V, s.d),
    lossCase('cwt', s.rows, s.rows, s.d),
    covarianceCase(s.whitenRows, s.d),
    attentionCase('forward', s.B, s.T, s.d, s.nHead),
    attentionCase('backward', s.B, s.T, s.d, s.nHead),
    layerNormCase('forward', s.rows, s.d),
    layerNormCase('backward', s.rows, s.d),
    adamwCase(s.adamN),
  ];
}
