// Runs one benchmark case: build it, time its repetitions with tinybench (warm-up excluded),
// time them again on the GPU with timestamp queries where the adapter has them, check the
// result against its float64 reference, and turn it all into an hlm.bench/1 record. A case
// that fails (out of memory, a validation error) becomes a record with status 'error'.
//
// Two timings (method.mode in the record):
//   sustained  a sample queues R repetitions back to back and waits once, R chosen so that a
//              sample lasts at least MIN_SAMPLE_MS; the time of a repetition is the sample's
//              over R. This is how work runs inside a training step, so a kernel's figure here
//              agrees with its share of a step (the default).
//   isolated   a sample is one repetition and a wait: the latency of a lone submit, host and
//              queue round trip included (what a decode step or an interactive call sees).
import { Bench } from 'tinybench';
import type { Dispatch, Gpu } from '../gpu/device.js';
import { GpuProfiler } from '../gpu/timing.js';
import { log } from '../log.js';
import {
  SCHEMA,
  buildInfo,
  energyMeter,
  envInfo,
  gpuInfo,
  rssPeakBytes,
  type BenchRecord,
  type Check,
  type EnergyMeter,
  type Params,
  type Stats,
  type Suite,
  type Unit,
  type WeightsInfo,
} from './record.js';

/** A built case: what one repetition does, how much work it counts, and how to check it. */
export interface Prepared {
  /** Queue one repetition (the harness waits for it, then for the GPU). */
  step(): void | Promise<void>;
  work: { flops?: number; bytes?: number; tokens?: number };
  unit: Unit;
  /** Compare one fresh repetition's output with the float64 reference. */
  check?(): Promise<Check>;
  /** Infer suite: the weights' format and bytes (the record's `weights`). */
  weights?: WeightsInfo;
  /** The phase a dispatch belongs to, for gpu_ms.phases (training: forward, head, backward, optimizer). */
  phase?(d: Dispatch): string;
  dispose(): void;
}

export interface BenchContext {
  gpu: Gpu;
  /** Measured peaks of this device (set by the peak cases, which run first). */
  peak: { flops?: number; bytes?: number };
}

export interface BenchCase {
  suite: Suite;
  name: string;
  test: string;
  params: Params;
  build(ctx: BenchContext): Promise<Prepared>;
  /** Where float64 on the benchmark's own inputs is too slow: a smaller case to check instead. */
  checkOn?: { shape: string; build(ctx: BenchContext): Promise<Prepared> };
  /** Sets ctx.peak from its result (the peak cases). */
  peak?: 'flops' | 'bytes';
}

export type Timing = 'sustained' | 'isolated';

/** A sustained sample lasts at least this long. */
export const MIN_SAMPLE_MS = 25;
/** And holds at most this many repetitions (a kernel of a few microseconds). */
export const MAX_PER_SAMPLE = 4096;

export interface RunOptions {
  /** Timed samples. */
  reps: number;
  /** Warm-up samples (besides the first repetition). */
  warmup: number;
  /** Samples timed with timestamp queries (0: none). */
  gpuReps: number;
  /** Log this many dispatch labels with the most GPU time per repetition (0: none). */
  top?: number;
  /** Default sustained. */
  timing?: Timing;
}

/** Repetitions per sustained sample: doubled (or scaled from the last sample's time) until one lasts MIN_SAMPLE_MS. */
async function repetitionsPerSample(p: Prepared, gpu: Gpu): Promise<{ perSample: number; ran: number }> {
  let n = 1;
  let ran = 0;
  for (;;) {
    const t0 = performance.now();
    for (let i = 0; i < n; i++) await p.step();
    await gpu.done();
    const ms = performance.now() - t0;
    ran += n;
    if (ms >= MIN_SAMPLE_MS || n >= MAX_PER_SAMPLE) return { perSample: n, ran };
    const scaled = ms > 0 ? Math.ceil((1.25 * n * MIN_SAMPLE_MS) / ms) : 2 * n;
    n = Math.min(MAX_PER_SAMPLE, Math.max(2 * n, scaled));
  }
}

export interface Session {
  ctx: BenchContext;
  base: Pick<BenchRecord, 'build' | 'env' | 'gpu'>;
  profiler?: GpuProfiler;
  energy: EnergyMeter;
}

export function openSession(gpu: Gpu): Session {
  return {
    ctx: { gpu, peak: {} },
    base: { build: buildInfo(), env: envInfo(), gpu: gpuInfo(gpu) },
    profiler: GpuProfiler.create(gpu),
    energy: energyMeter(gpu),
  };
}

export function closeSession(s: Session): void {
  s.ctx.gpu.profiler = undefined;
  s.profiler?.destroy();
}

function quantile(sorted: number[], q: number): number {
  const i = (sorted.length - 1) * q;
  const lo = Math.floor(i);
  const hi = Math.ceil(i);
  return sorted[lo] + (sorted[hi] - sorted[lo]) * (i - lo);
}

/** Validation and out-of-memory errors of `f` (which submits GPU work) as an exception. */
async function scoped<T>(gpu: Gpu, what: string, f: () => Promise<T>): Promise<T> {
  gpu.device.pushErrorScope('out-of-memory');
  gpu.device.pushErrorScope('validation');
  let result: T | undefined;
  let thrown: unknown;
  try {
    result = await f();
  } catch (e) {
    thrown = e;
  }
  const invalid = await gpu.device.popErrorScope();
  const oom = await gpu.device.popErrorScope();
  if (oom) throw new Error(`${what}: GPU out of memory: ${oom.message}`);
  if (invalid) throw new Error(`${what}: ${invalid.message}`);
  if (thrown) throw thrown;
  return result as T;
}

export async function runCase(s: Session, c: BenchCase, o: RunOptions): Promise<BenchRecord> {
  const { gpu } = s.ctx;
  const timing = o.timing ?? 'sustained';
  const gpuTimer = s.profiler ? `timestamp-query, one compute pass per dispatch, in separate ${timing} samples` : null;
  const record: BenchRecord = {
    schema: SCHEMA,
    suite: c.suite,
    name: c.name,
    test: c.test,
    status: 'ok',
    params: c.params,
    ...s.base,
    method: {
      harness: `tinybench ${s.base.build.tinybench ?? ''}`.trim(),
      warmup: o.warmup + 1,
      reps: o.reps,
      timer: 'performance.now() from submit to onSubmittedWorkDone',
      gpu_timer: gpuTimer,
      mode: timing,
      per_sample: 1,
      min_sample_ms: timing === 'sustained' ? MIN_SAMPLE_MS : 0,
    },
    latency_ms: null,
    gpu_ms: null,
    work: { flops: null, bytes: null, tokens: null },
    throughput: null,
    memory: { rss_peak_bytes: null, gpu_peak_bytes: null },
    dispatches: null,
    energy: { source: null, joules: null, watts: null, reason: 'not measured' },
    check: null,
  };
  gpu.resetPeak();
  const before = gpu.memory().bytesNow;
  let p: Prepared | undefined;
  try {
    p = await scoped(gpu, 'build', () => c.build(s.ctx));
    const prepared = p;
    // The first repetition (a warm-up, counted in method.warmup) runs under error scopes, so
    // that a failure is this test's error.
    const dispatched = gpu.counts().dispatches;
    await scoped(gpu, 'first repetition', async () => {
      await prepared.step();
      await gpu.done();
    });
    record.dispatches = gpu.counts().dispatches - dispatched;
    record.work = { flops: p.work.flops ?? null, bytes: p.work.bytes ?? null, tokens: p.work.tokens ?? null };
    if (p.weights) record.weights = p.weights;
    let perSample = 1;
    if (timing === 'sustained') {
      const r = await repetitionsPerSample(prepared, gpu);
      perSample = r.perSample;
      // Repetitions run before measuring: the first, the calibration's, then the warm-up samples'.
      record.method.warmup = 1 + r.ran + o.warmup * perSample;
      record.method.per_sample = perSample;
      if (perSample > 1)
        record.method.timer = `performance.now() over ${perSample} back-to-back repetitions to onSubmittedWorkDone`;
    }
    let energy: BenchRecord['energy'] | undefined;
    const bench = new Bench({
      iterations: o.reps,
      time: 0,
      warmup: o.warmup > 0,
      warmupIterations: Math.max(1, o.warmup),
      warmupTime: 0,
      throws: true,
      setup: (_t, mode) => {
        if (mode === 'run') s.energy.start();
      },
      teardown: async (_t, mode) => {
        if (mode === 'run') energy = await s.energy.stop();
      },
    });
    bench.add(c.test, async () => {
      for (let i = 0; i < perSample; i++) await prepared.step();
      await gpu.done();
    });
    await bench.run();
    const result = bench.tasks[0].result;
    if (result.state !== 'completed')
      throw result.state === 'errored' ? result.error : new Error(`tinybench ended in state ${result.state}`);
    // Per repetition: a sample's time over its repetitions.
    const raw = result.latency;
    const l = { ...raw, mean: raw.mean / perSample, sd: raw.sd / perSample, p50: raw.p50 / perSample };
    record.latency_ms = {
      mean: l.mean,
      sd: l.sd,
      rme: Number.isFinite(raw.rme) ? raw.rme : 0,
      p50: l.p50,
      p75: raw.p75 / perSample,
      p99: raw.p99 / perSample,
      min: raw.min / perSample,
      max: raw.max / perSample,
      n: raw.samplesCount,
    } satisfies Stats;
    if (energy) record.energy = energy;

    if (s.profiler && o.gpuReps > 0) {
      const totals: number[] = [];
      const phases: Record<string, number> = {};
      const byLabel = new Map<string, { ms: number; count: number }>();
      gpu.profiler = s.profiler;
      try {
        // A profiled sample runs its repetitions back to back too, as many as the query set holds.
        s.profiler.begin();
        await p.step();
        await gpu.done();
        const perRep = Math.max(1, (await s.profiler.read()).length);
        const reps = Math.max(1, Math.min(perSample, Math.floor(s.profiler.capacity / perRep)));
        for (let r = 0; r < o.gpuReps; r++) {
          s.profiler.begin();
          for (let i = 0; i < reps; i++) await p.step();
          await gpu.done();
          const times = await s.profiler.read();
          if (s.profiler.overflow) throw new Error(`more than ${s.profiler.capacity} dispatches in one sample`);
          const n = o.gpuReps * reps;
          totals.push(times.reduce((a, t) => a + t.ms, 0) / reps);
          if (p.phase)
            for (const t of times) {
              const k = p.phase(t.dispatch);
              phases[k] = (phases[k] ?? 0) + t.ms / n;
            }
          for (const t of times) {
            const e = byLabel.get(t.dispatch.label) ?? { ms: 0, count: 0 };
            byLabel.set(t.dispatch.label, { ms: e.ms + t.ms / n, count: e.count + 1 / n });
          }
        }
      } catch (e) {
        log.warn(`${c.name} ${c.test}: no GPU time (${(e as Error).message})`);
        totals.length = 0;
      } finally {
        gpu.profiler = undefined;
      }
      if (totals.length && o.top)
        logTop(`${c.name} ${c.test}`, byLabel, o.top, totals.reduce((a, b) => a + b, 0) / totals.length);
      if (totals.length) {
        const sorted = [...totals].sort((a, b) => a - b);
        record.gpu_ms = {
          mean: totals.reduce((a, b) => a + b, 0) / totals.length,
          p50: quantile(sorted, 0.5),
          min: sorted[0],
          max: sorted.at(-1)!,
          n: totals.length,
          ...(p.phase ? { phases } : {}),
        };
      }
    }

    const work = p.unit === 'GFLOP/s' ? p.work.flops : p.unit === 'GB/s' ? p.work.bytes : p.work.tokens;
    // The median: on a shared machine one descheduled repetition moves the mean, not the median.
    const perSecond = (work ?? 0) / (l.p50 / 1e3);
    const value = p.unit === 'tokens/s' ? perSecond : perSecond / 1e9;
    const peak = p.unit === 'GFLOP/s' ? s.ctx.peak.flops : p.unit === 'GB/s' ? s.ctx.peak.bytes : undefined;
    record.throughput = { unit: p.unit, value, peak_fraction: peak ? perSecond / peak : null };
    if (c.peak) s.ctx.peak[c.peak] = perSecond;

    if (c.checkOn) {
      const small = await c.checkOn.build(s.ctx);
      try {
        record.check = { ...(await small.check!()), shape: c.checkOn.shape };
      } finally {
        small.dispose();
      }
    } else if (p.check) {
      record.check = { ...(await p.check()), shape: 'same' };
    }
  } catch (e) {
    record.status = 'error';
    record.error = (e as Error).message ?? String(e);
    log.error(`${c.suite} ${c.name} ${c.test}: ${record.error}`);
  } finally {
    try {
      p?.dispose();
    } catch (e) {
      log.warn(`${c.name} ${c.test}: dispose failed: ${(e as Error).message}`);
    }
  }
  record.memory = { rss_peak_bytes: rssPeakBytes(), gpu_peak_bytes: gpu.memory().bytesPeak - before };
  record.time = new Date().toISOString();
  return record;
}

/** Where the GPU time of one repetition went: the heaviest dispatch labels, for tuning. */
function logTop(what: string, byLabel: Map<string, { ms: number; count: number }>, n: number, total: number): void {
  const rows = [...byLabel].sort((a, b) => b[1].ms - a[1].ms).slice(0, n);
  const lines = rows.map(
    ([label, t]) =>
      `  ${t.ms.toFixed(3).padStart(9)} ms ${((100 * t.ms) / total).toFixed(1).padStart(5)}%  ` +
      `×${Math.round(t.count)}  ${label}`,
  );
  process.stderr.write(
    `${what}: GPU time per repetition ${total.toFixed(3)} ms; heaviest dispatches:\n${lines.join('\n')}\n`,
  );
}
