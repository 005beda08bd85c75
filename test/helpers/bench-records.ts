// Synthetic hlm.bench/1 records for the bench tests: no timing noise.
import type { BenchRecord } from '../../src/bench/record.js';

export function syntheticRecord(over: Partial<BenchRecord> = {}, value = 100): BenchRecord {
  return {
    schema: 'hlm.bench/1',
    suite: 'kernel',
    name: 'matmul',
    test: 'square 256x256x256 NN',
    status: 'ok',
    params: { M: 256, N: 256, K: 256, transA: false, transB: false },
    build: { tool: 'hlm', version: '0.1.0', commit: 'abc1234' },
    env: { os: 'Linux 6', arch: 'x64', cpu: 'test cpu', cores: 2, memory_bytes: 1 << 30, runtime: 'node v20' },
    gpu: { backend: 'opengl', vendor: '', architecture: '', device: 'llvmpipe', kind: 'software', features: [] },
    method: { harness: 'tinybench 6.2.5', warmup: 2, reps: 5, timer: 'performance.now()', gpu_timer: null },
    latency_ms: { mean: 8, sd: 0.4, rme: 2.5, p50: 7.9, p75: 8.2, p99: 8.9, min: 7.5, max: 9, n: 5 },
    gpu_ms: null,
    work: { flops: 33554432, bytes: 786432, tokens: null },
    throughput: { unit: 'GFLOP/s', value, peak_fraction: 0.25 },
    memory: { rss_peak_bytes: 1e8, gpu_peak_bytes: 786496 },
    energy: { source: null, joules: null, watts: null, reason: 'no RAPL' },
    check: { reference: 'float64', metric: 'relative L2 error', value: 3e-7, tolerance: 1e-5, ok: true, shape: 'same' },
    time: '2026-01-01T00:00:00.000Z',
    ...over,
  };
}

/** A small run: matmuls in three transposes, a loss head, a train step (with a comma and quotes in a param for CSV). */
export function syntheticRun(scale = 1): BenchRecord[] {
  return [
    syntheticRecord({}, 100 * scale),
    syntheticRecord(
      { test: 'square 256x256x256 NT', params: { M: 256, N: 256, K: 256, transA: false, transB: true } },
      90 * scale,
    ),
    syntheticRecord(
      { name: 'loss-head', test: 'cwt 128x128x64', params: { head: 'cwt', rows: 128, V: 128, d: 64 } },
      5 * scale,
    ),
    syntheticRecord({
      suite: 'train',
      name: 'train-tiny',
      test: 'ce step 4x64',
      params: { preset: 'tiny', objective: 'ce', note: 'a, "b"' },
      throughput: { unit: 'tokens/s', value: 2000 * scale, peak_fraction: null },
      check: { reference: 'none', metric: 'loss', value: 10.8, ok: true },
    }),
  ];
}
