// Runs one benchmark case: build it, time its repetitions with tinybench (warm-up excluded),
// time them again on the GPU with timestamp queries where the adapter has them, check the
// result against its float64 reference, and turn it all into an hlm.bench/1 record. A case
// that fails (out of memory, a validation error) becomes a record with status 'error'.
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

export interface RunOptions {
  reps: number;
  warmup: number;
  /** Repetitions timed with timestamp queries (0: none). */
  gpuReps: number;
  /** Log this many dispatch labels with the most GPU time per repetition (0: none). */
  top?: number;
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
  const gpuTimer = s.profiler ? 'timestamp-query, one compute pass per dispatch, separate repetitions' : null;
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
      await prepared.step();
      await gpu.done();
    });
    await bench.run();
    const result = bench.tasks[0].result;
    if (result.state !== 'completed')
      throw result.state === 'errored' ? result.error : new Error(`tinybench ended in state ${result.state}`);
    const l = result.latency;
    record.latency_ms = {
      mean: l.mean,
      sd: l.sd,
      rme: Number.isFinite(l.rme) ? l.rme : 0,
      p50: l.p50,
      p75: l.p75,
      p99: l.p99,
      min: l.min,
      max: l.max,
      n: l.samplesCount,
    } satisfies Stats;
    if (energy) record.energy = energy;

    if (s.profiler && o.gpuReps > 0) {
      const totals: number[] = [];
      const phases: Record<string, number> = {};
      const byLabel = new Map<string, { ms: number; count: number }>();
      gpu.profiler = s.profiler;
      try {
        for (let r = 0; r < o.gpuReps; r++) {
          s.profiler.begin();
          await p.step();
          await gpu.done();
          const times = await s.profiler.read();
          if (s.profiler.overflow) throw new Error(`more than ${s.profiler.capacity} dispatches in one repetition`);
          totals.push(times.reduce((a, t) => a + t.ms, 0));
          if (p.phase)
            for (const t of times) {
              const k = p.phase(t.dispatch);
              phases[k] = (phases[k] ?? 0) + t.ms / o.gpuReps;
            }
          for (const t of times) {
            const e = byLabel.get(t.dispatch.label) ?? { ms: 0, count: 0 };
            byLabel.set(t.dispatch.label, { ms: e.ms + t.ms / o.gpuReps, count: e.count + 1 / o.gpuReps });
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
