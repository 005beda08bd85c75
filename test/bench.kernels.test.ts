// The bench's own GPU pieces: the peak kernels compute what their work counts claim, the
// timestamp profiler is off by default and times each dispatch when attached, and a filtered
// in-process run gives schema-valid records, an error record for a failing test, and goes on.
import type { Gpu } from '../src/gpu/device.js';
import { GpuProfiler } from '../src/gpu/timing.js';
import { matmul } from '../src/kernels/matmul.js';
import { peakCopy, peakCopyBytes, peakFma, peakFmaFlops, peakFmaReference } from '../src/kernels/peak.js';
import type { BenchCase } from '../src/bench/harness.js';
import { runBench } from '../src/bench/run.js';
import { benchSchema, validate } from '../src/bench/schema.js';
import { selectCases } from '../src/bench/suites.js';
import { Gpu as GpuClass } from '../src/gpu/device.js';
import { openTestGpu } from './helpers/gpu.js';
import { expectClose, makeRandom } from './helpers/check.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());
const rand = makeRandom();

test(
  'peak_fma computes its FMA chains (float64 recurrence) on an odd count, and counts 64 ' + 'FLOPs per iteration',
  async () => {
    const n = 1000;
    const iters = 37;
    const m = 0.75;
    const c = 0.125;
    const out = gpu.buffer('fma out', n * 4);
    const d = await peakFma(gpu, { n, iters, m, c, out });
    await gpu.run([d]);
    const got = await gpu.readF32(out, 0, n);
    expectClose(
      got,
      Float64Array.from({ length: n }, (_, i) => peakFmaReference(i, iters, m, c)),
      1e-5,
      'peak fma',
    );
    expect(peakFmaFlops({ n, iters })).toBe(n * iters * 64);
    gpu.release(d);
    gpu.free(out);
    await expect(peakFma(gpu, { n, iters: 70000, out })).rejects.toThrow(/iters in 1..65535/);
  },
);

test.each([
  ['one dispatch', undefined, 1],
  ['chunks that fit a binding (here 7·16 vec4s)', 7 * 16, 9],
])('peak_copy copies exactly n vec4s and nothing past them: %s', async (_name, maxChunk, dispatches) => {
  const n4 = 1001;
  const data = rand.uniform(4 * n4 + 8);
  const src = gpu.upload('copy src', data);
  const dst = gpu.upload('copy dst', new Float32Array(4 * n4 + 8).fill(-7));
  const d = await peakCopy(gpu, { n4, src, dst, maxChunk });
  expect(d.length).toBe(dispatches);
  await gpu.run(d);
  const got = await gpu.readF32(dst);
  expect(Array.from(got.subarray(0, 4 * n4))).toEqual(Array.from(data.subarray(0, 4 * n4)));
  expect(Array.from(got.subarray(4 * n4, 4 * n4 + 8))).toEqual(new Array(8).fill(-7));
  expect(peakCopyBytes(n4)).toBe(2 * 16 * n4);
  gpu.release(...d);
  gpu.free(src, dst);
});

test(
  'the profiler is off by default; attached, it times each dispatch in submission order (SwiftShader has ' +
    'timestamp-query)',
  async () => {
    expect(gpu.profiler).toBeUndefined();
    if (!gpu.features.has('timestamp-query')) expect(GpuProfiler.create(gpu)).toBeUndefined();
    let sw: Gpu;
    try {
      sw = await GpuClass.open('swiftshader');
    } catch (e) {
      console.log(`profiler not exercised (HLM_TEST_DEVICE=swiftshader exercises it): ${(e as Error).message}`);
      return;
    }
    try {
      const profiler = GpuProfiler.create(sw, 3)!;
      expect(profiler).toBeDefined();
      const A = sw.buffer('a', 64 * 64 * 4);
      const B = sw.buffer('b', 64 * 64 * 4);
      const C = sw.buffer('c', 64 * 64 * 4);
      const d1 = await matmul(sw, { M: 64, N: 64, K: 64, a: { buffer: A }, b: { buffer: B }, c: { buffer: C } });
      const d2 = await matmul(sw, { M: 16, N: 16, K: 16, a: { buffer: A }, b: { buffer: B }, c: { buffer: C } });
      sw.profiler = profiler;
      profiler.begin();
      sw.submit([...d1, { clear: C }, ...d2]);
      await sw.done();
      const times = await profiler.read();
      expect(times.map((t) => t.dispatch)).toEqual([...d1, ...d2]);
      for (const t of times) if (!(t.ms > 0)) throw new Error(`${t.dispatch.label}: ${t.ms} ms`);
      sw.submit([...d1, ...d1, ...d1]); // past the capacity of 3: counted, not timed
      await sw.done();
      expect(profiler.overflow).toBe(2);
      sw.profiler = undefined;
      profiler.begin();
      sw.submit(d1);
      await sw.done();
      expect(await profiler.read()).toEqual([]);
      profiler.destroy();
    } finally {
      sw.destroy();
    }
  },
);

test(
  'a filtered run gives schema-valid records; a failing test gives an error record and the ' + 'run goes on',
  async () => {
    const sel = selectCases(
      ['kernel', 'train'],
      true,
      /matmul\/square.*NN|loss-head\/cwt|attention\/forward|layernorm\/forward|train-tiny\/cwt/,
    );
    expect(sel.cases.map((c) => c.test)).toEqual([
      'square 256x256x256 NN',
      'cwt 128x128x64',
      'forward B4 T32 d64 h4',
      'forward 128x64',
      'cwt step 4x64',
    ]);
    expect(sel.hidden.map((c) => c.name)).toEqual(['peak', 'peak']); // measured for % of peak, not reported
    const failing: BenchCase = {
      suite: 'kernel',
      name: 'matmul',
      test: 'too big',
      params: { bytes: 2 ** 52 },
      build: async (ctx) => {
        ctx.gpu.buffer('too big', 2 ** 52);
        throw new Error('unreachable');
      },
    };
    sel.cases.splice(1, 0, failing);
    const streamed: string[] = [];
    const records = await runBench(gpu, sel, { quick: true, reps: 2, warmup: 0 }, (r) => streamed.push(r.test));
    expect(streamed).toEqual(sel.cases.map((c) => c.test)); // handed on one by one, in order
    for (const r of records) expect(validate(benchSchema(), r)).toEqual([]);
    const [mm, bad, cwt, att, ln, train] = records;
    expect(bad).toMatchObject({ status: 'error', latency_ms: null, throughput: null });
    expect(bad.error).toMatch(/buffer "too big" needs/);
    expect(bad.dispatches).toBeNull();
    expect(att.dispatches).toBe(1); // the fused attention forward
    expect(train.dispatches).toBeGreaterThan(20); // one training step's
    for (const r of [mm, cwt, att, ln, train]) {
      expect(r.status).toBe('ok');
      if (!r.check?.ok) throw new Error(`${r.name} ${r.test}: ${JSON.stringify(r.check)}`);
      expect(r.latency_ms!.n).toBe(2);
      // Sustained by default: the first repetition, the calibration's, then the timed samples of per_sample each.
      expect(r.method).toMatchObject({ reps: 2, mode: 'sustained', min_sample_ms: 25 });
      expect(r.method.warmup).toBeGreaterThanOrEqual(1 + r.method.per_sample!);
    }
    // A LayerNorm of 128 rows takes far less than a 25 ms sample: many repetitions to one wait.
    expect(ln.method.per_sample).toBeGreaterThan(1);
    expect(mm.throughput).toMatchObject({ unit: 'GFLOP/s' });
    expect(mm.throughput!.peak_fraction).toBeGreaterThan(0);
    expect(mm.work.flops).toBe(2 * 256 ** 3);
    expect(mm.memory.gpu_peak_bytes).toBeGreaterThanOrEqual(3 * 256 * 256 * 4);
    expect(ln.throughput!.unit).toBe('GB/s');
    expect(train.throughput!.unit).toBe('tokens/s');
    expect(train.work.tokens).toBe(4 * 64);
    expect(train.check!.metric).toBe('loss');
    if (gpu.features.has('timestamp-query'))
      expect(Object.keys(train.gpu_ms!.phases!).sort()).toEqual(['backward', 'forward', 'head', 'optimizer']);
    else expect(train.gpu_ms).toBeNull();
    // Everything the cases built was freed; shared scratch (matmul textures, placeholders) stays with the device.
    expect(gpu.memory().bytesNow).toBe(gpu.memory().sharedBytes);
  },
  120_000,
);

test('isolated timing: a wait after every repetition, one repetition a sample', async () => {
  const sel = selectCases(['kernel'], true, /layernorm\/forward/);
  const [r] = await runBench(gpu, sel, { quick: true, reps: 3, warmup: 1, timing: 'isolated' }, () => undefined);
  expect(validate(benchSchema(), r)).toEqual([]);
  expect(r.method).toMatchObject({ mode: 'isolated', per_sample: 1, warmup: 2, reps: 3, min_sample_ms: 0 });
  expect(r.latency_ms!.n).toBe(3);
});
