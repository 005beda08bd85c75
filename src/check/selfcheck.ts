// The device self-check behind `hlm check`: every kernel run on the chosen device against its
// float64 reference on small odd shapes with fresh random inputs, then a whole tiny GPT-2
// training step per head (loss and every gradient), plus one timed matmul.
// It is how a user learns, on a new machine, that the GPU path computes the right numbers.
import type { Gpu } from '../gpu/device.js';
import { add } from '../kernels/add.js';
import { castF16 } from '../kernels/cast.js';
import { crossEntropyHead } from '../kernels/crossentropy.js';
import { attentionBackward, attentionForward, createLoneAttention } from '../kernels/attention.js';
import { matmul, matmulFlops, type MatmulSpec } from '../kernels/matmul.js';
import { reduceRows } from '../kernels/reduce.js';
import { addBroadcast } from '../reference/add.js';
import { attention as attentionRef, attentionBackward as attentionBackwardRef } from '../reference/attention.js';
import { matmul as matmulRef, matmulEpilogue } from '../reference/matmul.js';
import { rowMax, rowSum } from '../reference/reduce.js';
import { streamRng } from '../data/random.js';
import { relErr } from '../util/stats.js';
import { f16Bits, packF16, roundF16 } from '../util/f16.js';
import { preset } from '../model/config.js';
import { Gpt2 } from '../model/gpt2.js';
import { createCeHead, createCwtHead } from '../model/heads.js';
import { createClassifierHead } from '../model/classifier.js';
import { classifierHeadReference } from '../reference/classifier.js';
import { crossEntropyTied, crossEntropyTiedBackward } from '../reference/crossentropy.js';
import { cwtLoss, cwtLossBackward } from '../reference/cwt.js';
import { paramLayout } from '../model/params.js';
import { gpt2LossAndGrads } from '../reference/gpt2.js';
import { checkQuantized } from './quantized.js';
import { checkF16Head } from './f16.js';

export interface CheckRow {
  kernel: string;
  shape: string;
  relErr: number;
  tolerance: number;
  ok: boolean;
}

export interface Throughput {
  kernel: string;
  shape: string;
  /** Median over samples of a sample's time over its products. */
  ms: number;
  gflops: number;
  /** Products queued back to back in a timed sample. */
  perSample: number;
}

export interface SelfCheckResult {
  device: string;
  checks: CheckRow[];
  throughput: Throughput[];
  ok: boolean;
}

/** The whole-model checks' GPT-2: two layers of width 12, a vocabulary (37) no multiple of any tile. */
const TINY_MODEL = { ...preset('tiny'), vocab_size: 37, n_positions: 9, n_embd: 12, n_layer: 2, n_head: 3 };

type Gpt2Reference = Pick<ReturnType<typeof gpt2LossAndGrads>, 'loss' | 'grads'>;

function random(n: number, next: () => number): Float32Array {
  return Float32Array.from({ length: n }, () => 2 * next() - 1);
}

export async function selfCheck(
  gpu: Gpu,
  opts: { size: number; reps: number; seed?: number },
): Promise<SelfCheckResult> {
  const next = streamRng(opts.seed ?? Date.now());
  const checks: CheckRow[] = [];
  const record = (kernel: string, shape: string, got: ArrayLike<number>, ref: ArrayLike<number>, tolerance: number) => {
    const err = relErr(got, ref);
    checks.push({ kernel, shape, relErr: err, tolerance, ok: err <= tolerance }); // NaN is not ok
  };

  // One product on fresh inputs against the float64 one (the epilogue's checks: `product` below).
  const plain = async (name: string, o: Pick<MatmulSpec, 'M' | 'N' | 'K' | 'transA' | 'transB' | 'splitK'>) => {
    const { M, N, K, transA = false, transB = false } = o;
    const a = random(M * K, next);
    const b = random(K * N, next);
    const A = gpu.upload('check A', a);
    const B = gpu.upload('check B', b);
    const C = gpu.buffer('check C', M * N * 4);
    const d = await matmul(gpu, { ...o, a: { buffer: A }, b: { buffer: B }, c: { buffer: C } });
    await gpu.run(d, `check ${name}`);
    const ref = matmulRef(a, b, M, N, K, transA, transB);
    const t = `${transA ? ' Aᵀ' : ''}${transB ? ' Bᵀ' : ''}`;
    record(`${name}${t}`, `${M}x${N}x${K}`, await gpu.readF32(C, 0, M * N), ref, 1e-5);
    gpu.release(...d);
    gpu.free(A, B, C);
  };
  for (const [M, N, K] of [
    [127, 129, 65],
    [3, 5, 7],
  ]) {
    for (const [transA, transB] of [
      [false, false],
      [true, false],
      [false, true],
      [true, true],
    ])
      await plain('matmul', { M, N, K, transA, transB });
  }
  // Split-K (what a hardware GPU does for weight gradients): three parts of K, then their sum.
  for (const transA of [false, true]) await plain('matmul split-K', { M: 67, N: 129, K: 1100, transA, splitK: 3 });

  // The fused loss heads (src/kernels/crossentropy.ts): CE over a vocabulary no multiple of the tile, in chunks with a
  // short last one, an ignored row; its forward alone (evaluation: argmax, no logits stored); and the CWT loss, the
  // same kernels over the K gathered target embeddings with the diagonal as targets (temperature 0.7). Training runs
  // with both forwards: the fused one, and matmul's product with a pass over the stored logits.
  for (const [head, forward] of [
    ['ce', 'fused'],
    ['ce', 'matmul'],
    ['cwt', 'fused'],
    ['cwt', 'matmul'],
  ] as const) {
    const N = head === 'ce' ? 37 : 45;
    const V = head === 'ce' ? 1031 : N;
    const d = 24;
    const h = random(N * d, next);
    const E = random(V * d, next);
    const targets = Int32Array.from({ length: N }, (_, i) =>
      head === 'cwt' ? i : i === 5 ? -1 : Math.floor(next() * V),
    );
    const count = targets.filter((t) => t >= 0).length;
    const bufs = {
      H: gpu.upload('check h', h),
      E: gpu.upload('check E', E),
      T: gpu.upload('check targets', targets),
      L: gpu.buffer('check losses', N * 4),
      S: gpu.upload('check loss scale', Float32Array.of(1 / count)),
      DH: gpu.buffer('check dh', N * d * 4),
      DE: gpu.buffer('check dE', V * d * 4),
      A: gpu.buffer('check argmax', N * 4),
    };
    const common = {
      N,
      V,
      d,
      logitScale: head === 'cwt' ? 1 / 0.7 : 1,
      h: { buffer: bufs.H },
      wte: { buffer: bufs.E },
      targets: { buffer: bufs.T },
      losses: { buffer: bufs.L },
    };
    const train = await crossEntropyHead(gpu, {
      ...common,
      chunkRows: 16,
      lossScale: { buffer: bufs.S },
      dh: { buffer: bufs.DH },
      dwte: { buffer: bufs.DE },
      forward,
    });
    try {
      await gpu.run(train.dispatches, 'check loss head');
      const got = [
        ...(await gpu.readF32(bufs.L, 0, N)),
        ...(await gpu.readF32(bufs.DH, 0, N * d)),
        ...(await gpu.readF32(bufs.DE, 0, V * d)),
      ];
      if (head === 'ce') {
        const f = crossEntropyTied(h, E, targets, N, V, d);
        const b = crossEntropyTiedBackward(1, h, E, targets, N, V, d);
        record(`CE head ${forward} (chunks of 16)`, `${N}x${V}x${d}`, got, [...f.nll, ...b.dh, ...b.dE], 1e-5);
        const evaluation = await crossEntropyHead(gpu, { ...common, argmax: { buffer: bufs.A }, forward });
        await gpu.run(evaluation.dispatches, 'check loss head forward');
        // The argmax's logit must be the row's largest (robust to near-ties between f32 and f64).
        const amax = await gpu.read(bufs.A, Uint32Array, 0, N);
        const top = Array.from({ length: N }, (_, i) => Math.max(...f.logits.subarray(i * V, (i + 1) * V)));
        record(
          `CE forward + argmax, ${forward}`,
          `${N}x${V}x${d}`,
          [...(await gpu.readF32(bufs.L, 0, N)), ...Array.from(amax, (a, i) => f.logits[i * V + a])],
          [...f.nll, ...top],
          1e-5,
        );
        gpu.release(...evaluation.dispatches);
      } else {
        const tokens = Int32Array.from({ length: N }, (_, k) => k); // E holds the K gathered rows as they are
        const f = cwtLoss(h, E, tokens, N, d, 0.7);
        const b = cwtLossBackward(1, h, E, tokens, N, d, 0.7);
        const nll = Array.from({ length: N }, (_, k) => f.lse[k] - f.scores[k * N + k]);
        record(`CWT loss (τ 0.7) ${forward}`, `${N}x${N}x${d}`, got, [...nll, ...b.dh, ...b.de], 1e-5);
      }
    } finally {
      gpu.release(...train.dispatches);
      gpu.free(...Object.values(bufs));
    }
  }
  await checkF16Head(gpu, next, record);
  // The register kernel (a software adapter's default) with its operands from textures and from storage,
  // every transpose, K % 4 != 0 in TN; then the epilogue (bias, residual, GELU) on this device's default kernel
  // and on split K. With `f16` (a half offset) A and B are first cast to packed f16 (castF16) and read as such;
  // the reference multiplies the rounded values.
  const product = async (
    kernel: string,
    o: Pick<MatmulSpec, 'M' | 'N' | 'K' | 'transA' | 'transB' | 'kernel' | 'splitK'>,
    ep: { bias?: boolean; residual?: boolean; gelu?: boolean } = {},
    f16?: number,
  ) => {
    const { M, N, K } = o;
    const a = random(M * K, next);
    const b = random(K * N, next);
    const bias = random(N, next);
    const res = random(M * N, next);
    const A = gpu.upload('check A', a);
    const B = gpu.upload('check B', b);
    const C = gpu.buffer('check C', M * N * 4);
    const Bias = gpu.upload('check bias', bias);
    const Res = gpu.upload('check residual', res);
    const G = gpu.buffer('check gelu', M * N * 4);
    const A16 = gpu.buffer('check A f16', 2 * ((f16 ?? 0) + M * K));
    const B16 = gpu.buffer('check B f16', 2 * ((f16 ?? 0) + K * N));
    const half = (buffer: GPUBuffer) => ({ buffer, offset: f16, dtype: 'f16' as const });
    const casts =
      f16 === undefined
        ? []
        : [
            await castF16(gpu, { n: M * K, src: { buffer: A }, dst: half(A16) }),
            await castF16(gpu, { n: K * N, src: { buffer: B }, dst: half(B16) }),
          ];
    const d = await matmul(gpu, {
      ...o,
      a: f16 === undefined ? { buffer: A } : half(A16),
      b: f16 === undefined ? { buffer: B } : half(B16),
      c: { buffer: C },
      bias: ep.bias ? { buffer: Bias } : undefined,
      residual: ep.residual ? { buffer: Res } : undefined,
      gelu: ep.gelu ? { buffer: G } : undefined,
    });
    await gpu.run([...casts, ...d], 'check matmul');
    const [ra, rb] = f16 === undefined ? [a, b] : [a, b].map((x) => x.map(roundF16));
    const want = matmulEpilogue(matmulRef(ra, rb, M, N, K, o.transA, o.transB), N, {
      bias: ep.bias ? bias : undefined,
      residual: ep.residual ? res : undefined,
      gelu: ep.gelu,
    });
    const t = `${o.transA ? ' Aᵀ' : ''}${o.transB ? ' Bᵀ' : ''}`;
    record(`${kernel}${t}`, `${M}x${N}x${K}`, await gpu.readF32(C, 0, M * N), want.pre, 1e-5);
    if (want.gelu) record(`${kernel}${t} → GELU`, `${M}x${N}x${K}`, await gpu.readF32(G, 0, M * N), want.gelu, 1e-5);
    gpu.release(...casts, ...d);
    gpu.free(A, B, C, Bias, Res, G, A16, B16);
  };
  for (const [M, N, K, transA, transB, source] of [
    [67, 192, 128, false, false, 'textures'],
    [64, 192, 128, true, true, 'textures'],
    [37, 44, 20, false, true, 'storage'],
    [36, 44, 45, true, false, 'storage'],
  ] as const)
    await product(`matmul registers, ${source}`, { M, N, K, transA, transB, kernel: 'registers' });
  await product('matmul + bias + residual', { M: 37, N: 29, K: 45, transA: true }, { bias: true, residual: true });
  await product('matmul + bias', { M: 64, N: 192, K: 128 }, { bias: true, gelu: true });
  await product('split-K + bias + residual', { M: 67, N: 129, K: 1100, splitK: 3 }, { bias: true, residual: true });

  // Packed f16 (mixed precision): castF16 bit for bit against f16Bits, over values from f16's subnormals to past its
  // range (±Inf) times a GPU scalar, at an odd offset; then products reading f16 operands, at offsets whose vec4s are
  // one vec2<u32> (4) and whose halves are read alone (3, 1).
  {
    const n = 1001;
    const x = Float32Array.from({ length: n }, () => (next() < 0.5 ? -1 : 1) * 2 ** (50 * next() - 30));
    const scale = 0.75;
    const X = gpu.upload('check cast src', x);
    const S = gpu.upload('check cast scale', Float32Array.of(scale));
    const H = gpu.buffer('check cast dst', 2 * (n + 3));
    const d = await castF16(gpu, {
      n,
      src: { buffer: X },
      dst: { buffer: H, offset: 3, dtype: 'f16' },
      scale: { buffer: S },
    });
    await gpu.run([d], 'check castF16');
    const words = await gpu.read(H, Uint32Array, 0, Math.ceil((n + 3) / 2));
    const got = Array.from({ length: n }, (_, i) => (words[(i + 3) >> 1] >>> (16 * ((i + 3) & 1))) & 0xffff);
    record(
      'castF16 ×0.75 (binary16 bits)',
      `${n} at half 3`,
      got,
      Array.from(x, (v) => f16Bits(v * scale)),
      0,
    );
    gpu.release(d);
    gpu.free(X, S, H);
  }
  await product('matmul f16 A·B, registers', { M: 37, N: 44, K: 20, transB: true, kernel: 'registers' }, {}, 4);
  await product('matmul f16 A·B, registers', { M: 36, N: 44, K: 45, transA: true, kernel: 'registers' }, {}, 3);
  const biasResidual = { bias: true, residual: true };
  await product('f16 A·B, tiled + bias + residual', { M: 37, N: 29, K: 45, kernel: 'tiled' }, biasResidual, 1);
  await product('matmul f16 A·B, split-K', { M: 67, N: 129, K: 1100, transA: true, splitK: 3 }, {}, 1);

  {
    const rows = 67;
    const cols = 129;
    const x = random(rows * cols, next);
    const bias = random(cols, next);
    const X = gpu.upload('check x', x);
    const Bv = gpu.upload('check bias', bias);
    const O = gpu.buffer('check out', rows * cols * 4);
    const S = gpu.buffer('check sum', rows * 4);
    const Mx = gpu.buffer('check max', rows * 4);
    const ds = [
      await add(gpu, { rows, cols, out: { buffer: O }, a: { buffer: X }, b: { buffer: Bv }, bStrides: [0, 1] }),
      await reduceRows(gpu, { op: 'sum', rows, cols, x: { buffer: X }, out: { buffer: S } }),
      await reduceRows(gpu, { op: 'max', rows, cols, x: { buffer: X }, out: { buffer: Mx } }),
    ];
    await gpu.run(ds, 'check elementwise');
    record(
      'broadcast add',
      `${rows}x${cols}`,
      await gpu.readF32(O, 0, rows * cols),
      addBroadcast(x, bias, rows, cols, 0, 1),
      1e-6,
    );
    record('row sum', `${rows}x${cols}`, await gpu.readF32(S, 0, rows), rowSum(x, rows, cols), 1e-6);
    record('row max', `${rows}x${cols}`, await gpu.readF32(Mx, 0, rows), rowMax(x, rows, cols), 0);
    gpu.release(...ds);
    gpu.free(X, Bv, O, S, Mx);
  }

  await checkQuantized(gpu, next, record);
  // Fused attention on padded rows (lengths 1 and T among them), T not a multiple of the tile; and the decoder's
  // with qkv packed f16 (mixed precision), against float64 on the f16-rounded qkv (the arithmetic stays f32).
  for (const [causal, f16] of [
    [true, false],
    [false, false],
    [true, true],
  ]) {
    const [B, T, d, nHead] = [3, 37, 24, 3];
    const lengths = [T, 20, 1];
    const drawn = random(B * T * 3 * d, next);
    const qkv = f16 ? drawn.map(roundF16) : drawn;
    const dout = random(B * T * d, next);
    const shape = { B, T, d, nHead };
    const QKV = gpu.upload('check qkv', f16 ? packF16(drawn) : qkv);
    const DOUT = gpu.upload('check dout', dout);
    const LEN = gpu.upload('check lengths', Uint32Array.from(lengths));
    const OUT = gpu.buffer('check out', B * T * d * 4);
    const DQKV = gpu.buffer('check dqkv', 3 * B * T * d * 4);
    const { layer, scratch, free } = createLoneAttention(gpu, shape);
    const qkvRef = { buffer: QKV, dtype: f16 ? ('f16' as const) : undefined };
    const spec = { ...shape, causal, qkv: qkvRef, out: { buffer: OUT }, lengths: { buffer: LEN }, layer };
    const ds = [
      await attentionForward(gpu, spec),
      ...(await attentionBackward(gpu, { ...spec, scratch, dout: { buffer: DOUT }, dqkv: { buffer: DQKV } })),
    ];
    try {
      await gpu.run(ds, 'check attention');
      const opts = { causal, lengths };
      const shapeText = `${causal ? 'decoder' : 'encoder'} ${B}x${T} padded`;
      const kernel = f16 ? 'attention, f16 qkv' : 'attention';
      const ref = attentionRef(qkv, B, T, d, nHead, opts);
      record(kernel, shapeText, await gpu.readF32(OUT, 0, B * T * d), ref.out, 1e-5);
      const dref = attentionBackwardRef(dout, qkv, B, T, d, nHead, opts).dqkv;
      record(`${kernel} backward`, shapeText, await gpu.readF32(DQKV, 0, 3 * B * T * d), dref, 1e-5);
    } finally {
      gpu.release(...ds);
      free();
      gpu.free(QKV, DOUT, LEN, OUT, DQKV);
    }
  }

  // A model step's loss and every parameter gradient against the float64 reference's.
  const recordStep = async (kernel: string, shape: string, model: Gpt2, loss: GPUBuffer, ref: Gpt2Reference) => {
    const grads = await model.readGrads();
    const got: number[] = [(await gpu.readF32(loss, 0, 1))[0]];
    const want: number[] = [ref.loss];
    for (const t of model.layout.tensors) {
      got.push(...grads.subarray(t.offset, t.offset + t.size));
      want.push(...ref.grads[t.name]);
    }
    record(kernel, shape, got, want, 2e-4);
  };

  // The whole model: one tiny GPT-2 micro-batch's loss and every parameter gradient, for each
  // head and direction, against the float64 reference (exercises every training kernel).
  for (const [causal, head] of [
    [true, 'ce'],
    [false, 'ce'],
    [true, 'cwt'],
    [false, 'cwt'],
  ] as const) {
    const config = {
      ...TINY_MODEL,
      causal,
      objective: head,
      mask_token_id: causal ? null : 36,
    };
    const B = 2;
    const T = 9;
    const N = B * T;
    const layout = paramLayout(config);
    const params = new Float32Array(layout.total);
    const named: Record<string, Float64Array> = {};
    for (const t of layout.tensors) {
      const v = Float32Array.from(
        { length: t.size },
        () => (t.name.includes('ln_') && t.name.endsWith('weight') ? 1 : 0) + 0.6 * (next() - 0.5),
      );
      params.set(v, t.offset);
      named[t.name] = Float64Array.from(v);
    }
    const inputs = Int32Array.from({ length: N }, () => Math.floor(next() * 36));
    const targets = Int32Array.from({ length: N }, (_, i) => (causal || i % 4 === 1 ? Math.floor(next() * 36) : -1));
    const K = targets.filter((t) => t >= 0).length;
    const model = await Gpt2.create(gpu, config, { B, T, train: true });
    const h =
      head === 'ce' ? await createCeHead(model, { rows: K }) : await createCwtHead(model, { K, temperature: 1 });
    try {
      model.writeParams(params);
      model.setTokens(inputs);
      h.setTargets(targets);
      await gpu.run([{ clear: model.grads! }, ...model.forward, ...h.train, ...model.backward], 'check model');
      const ref = gpt2LossAndGrads(named, config, inputs, targets, B, T, head);
      await recordStep(`GPT-2 step, ${head}`, `${causal ? 'decoder' : 'encoder'} 2x9`, model, h.loss, ref);
    } finally {
      h.destroy();
      model.destroy();
    }
  }

  // The GLUE head through the whole model: padded rows of different lengths, mean pooling.
  {
    const config = {
      ...TINY_MODEL,
      causal: false,
      mask_token_id: 36,
      num_labels: 3,
    };
    const B = 3;
    const T = 9;
    const lengths = [9, 4, 1];
    const targets = [2, 0, 1];
    const layout = paramLayout(config);
    const params = Float32Array.from({ length: layout.total }, () => 0.6 * (next() - 0.5));
    const named: Record<string, Float64Array> = {};
    for (const t of layout.tensors) {
      if (t.name.includes('ln_') && t.name.endsWith('weight'))
        for (let i = 0; i < t.size; i++) params[t.offset + i] += 1;
      named[t.name] = Float64Array.from(params.subarray(t.offset, t.offset + t.size));
    }
    const inputs = Int32Array.from({ length: B * T }, () => Math.floor(next() * 36));
    const model = await Gpt2.create(gpu, config, { B, T, train: true, padding: true });
    const h = await createClassifierHead(model, 'mean');
    try {
      model.writeParams(params);
      model.setTokens(inputs);
      h.setBatch({ lengths, targets });
      await gpu.run([{ clear: model.grads! }, ...model.forward, ...h.train, ...model.backward], 'check classifier');
      const refHead = classifierHeadReference({
        W: named['score.weight'],
        b: named['score.bias'],
        C: 3,
        d: 12,
        T,
        pooling: 'mean',
        lengths,
        targets,
      });
      const ref = gpt2LossAndGrads(named, config, inputs, new Int32Array(B * T), B, T, refHead, { lengths });
      await recordStep('GPT-2 step, classifier', 'encoder 3x9 padded', model, h.loss, ref);
    } finally {
      h.destroy();
      model.destroy();
    }
  }

  const throughput: Throughput[] = [];
  {
    const n = opts.size;
    const A = gpu.upload('bench A', random(n * n, next));
    const B = gpu.upload('bench B', random(n * n, next));
    const C = gpu.buffer('bench C', n * n * 4);
    const d = await matmul(gpu, { M: n, N: n, K: n, a: { buffer: A }, b: { buffer: B }, c: { buffer: C } });
    await gpu.run(d, 'warm-up');
    // Sustained, as work runs inside a training step: a sample queues `per` products back to back and waits once,
    // `per` doubled until a sample lasts 25 ms (as hlm bench does).
    const sample = async (per: number) => {
      const t0 = performance.now();
      for (let i = 0; i < per; i++) gpu.submit(d, 'timed matmul');
      await gpu.done();
      return performance.now() - t0;
    };
    let per = 1;
    while ((await sample(per)) < 25 && per < 4096) per *= 2;
    const times: number[] = [];
    for (let r = 0; r < opts.reps; r++) times.push((await sample(per)) / per);
    times.sort((x, y) => x - y);
    const ms = times[Math.floor(times.length / 2)];
    throughput.push({
      kernel: 'matmul',
      shape: `${n}x${n}x${n}`,
      ms,
      gflops: matmulFlops({ M: n, N: n, K: n }) / (ms * 1e6),
      perSample: per,
    });
    gpu.release(...d);
    gpu.free(A, B, C);
  }
  return { device: gpu.name, checks, throughput, ok: checks.every((c) => c.ok) };
}
