// A whole `hlm bench` run: the selected cases in order, each record handed on as soon as it
// is finished (the command flushes it), the peak cases first so later ones have a peak.
import type { Gpu } from '../gpu/device.js';
import { log } from '../log.js';
import { closeSession, openSession, runCase, type RunOptions, type Timing } from './harness.js';
import type { BenchRecord } from './record.js';
import { throughputText } from './report.js';
import type { Selection } from './suites.js';

export interface BenchOptions {
  quick: boolean;
  /** Measured repetitions (default: 5 with --quick, else 20). */
  reps?: number;
  warmup?: number;
  /** Log the N dispatch labels with the most GPU time per test. */
  top?: number;
  /** Default sustained. */
  timing?: Timing;
}

export function runOptions(o: BenchOptions): RunOptions {
  const reps = o.reps ?? (o.quick ? 5 : 20);
  return {
    reps,
    warmup: o.warmup ?? (o.quick ? 1 : 3),
    gpuReps: Math.min(reps, o.quick ? 2 : 5),
    top: o.top,
    timing: o.timing ?? 'sustained',
  };
}

export async function runBench(
  gpu: Gpu,
  sel: Selection,
  o: BenchOptions,
  onRecord: (r: BenchRecord) => void,
): Promise<BenchRecord[]> {
  const session = openSession(gpu);
  const opts = runOptions(o);
  if (opts.top && !session.profiler) log.warn(`--top: ${gpu.name} has no timestamp-query, so no GPU time per dispatch`);
  const records: BenchRecord[] = [];
  try {
    for (const c of sel.hidden) {
      const r = await runCase(session, c, { ...opts, reps: Math.min(opts.reps, 3), gpuReps: 0 });
      log.debug(`peak for this run: ${c.test} ${throughputText(r)}`);
    }
    for (const c of sel.cases) {
      const t0 = performance.now();
      const r = await runCase(session, c, opts);
      log.info(
        `${c.suite}/${c.name} ${c.test}: ${r.status === 'ok' ? throughputText(r) : r.error} ` +
          `(${((performance.now() - t0) / 1e3).toFixed(1)} s)`,
      );
      records.push(r);
      onRecord(r);
    }
  } finally {
    closeSession(session);
  }
  return records;
}
