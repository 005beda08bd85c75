// The hlm.bench/1 record (one JSON line per measured test; src/bench/hlm.bench.schema.json)
// and what every record carries besides its measurement: build, machine, adapter, energy.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Gpu } from '../gpu/device.js';

export const SCHEMA = 'hlm.bench/1';
export const SUITES = ['kernel', 'train', 'infer'] as const;
export type Suite = (typeof SUITES)[number];
export type Params = Record<string, number | string | boolean>;
export type Unit = 'GFLOP/s' | 'GB/s' | 'tokens/s';

export interface Stats {
  mean: number;
  sd: number;
  rme: number;
  p50: number;
  p75: number;
  p99: number;
  min: number;
  max: number;
  n: number;
}

export interface Energy {
  source: 'nvidia-smi' | 'rapl' | null;
  joules: number | null;
  watts: number | null;
  reason?: string;
}

export interface Check {
  reference: string;
  metric: string;
  value: number | null;
  tolerance?: number | null;
  ok: boolean;
  shape?: string;
}

export interface BenchRecord {
  schema: typeof SCHEMA;
  suite: Suite;
  name: string;
  test: string;
  status: 'ok' | 'error';
  error?: string;
  time?: string;
  params: Params;
  build: { tool: string; version: string; commit?: string | null; [k: string]: string | null | undefined };
  env: { os: string; arch: string; cpu: string; cores: number; memory_bytes: number; runtime: string; host?: string };
  gpu: {
    backend: string;
    vendor: string;
    architecture: string;
    device: string;
    kind?: 'hardware' | 'software';
    features: string[];
  };
  method: {
    harness?: string;
    warmup: number;
    reps: number;
    timer: string;
    gpu_timer?: string | null;
    /** sustained: repetitions back to back, one wait a sample; isolated: a wait after each. */
    mode?: 'sustained' | 'isolated';
    /** Repetitions a timed sample holds (latencies are per repetition). */
    per_sample?: number;
    min_sample_ms?: number;
  };
  latency_ms: Stats | null;
  gpu_ms: { mean: number; p50: number; min: number; max: number; n: number; phases?: Record<string, number> } | null;
  work: { flops: number | null; bytes: number | null; tokens: number | null };
  throughput: { unit: Unit; value: number; peak_fraction?: number | null } | null;
  memory: { rss_peak_bytes: number | null; gpu_peak_bytes: number | null };
  /** GPU dispatches per repetition (one training step in the train suite); absent from other tools' records. */
  dispatches?: number | null;
  energy: Energy;
  check: Check | null;
  /** Infer suite: the weights' format, their bytes on the GPU, and the bytes of weights a token reads. */
  weights?: WeightsInfo;
}

export interface WeightsInfo {
  format: 'f32' | 'f16' | 'int8' | 'q4';
  bytes: number;
  bytes_per_token: number;
}

/** What identifies a test across runs and tools: --compare matches on it. */
export function testKey(r: Pick<BenchRecord, 'suite' | 'name' | 'test' | 'params'>): string {
  const params = Object.keys(r.params)
    .sort()
    .map((k) => [k, r.params[k]]);
  return `${r.suite}\t${r.name}\t${r.test}\t${JSON.stringify(params)}`;
}

function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}

function version(file: string): string {
  try {
    return (JSON.parse(readFileSync(file, 'utf8')) as { version?: string }).version ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

export function buildInfo(): BenchRecord['build'] {
  const root = repoRoot();
  const git = spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: root, encoding: 'utf8', timeout: 5000 });
  return {
    tool: 'hlm',
    version: version(join(root, 'package.json')),
    commit: git.status === 0 ? git.stdout.trim() : null,
    webgpu: version(join(root, 'node_modules/webgpu/package.json')),
    tinybench: version(join(root, 'node_modules/tinybench/package.json')),
  };
}

export function envInfo(): BenchRecord['env'] {
  return {
    os: `${os.type()} ${os.release()}`,
    arch: os.arch(),
    cpu: os.cpus()[0]?.model ?? 'unknown',
    cores: os.availableParallelism(),
    memory_bytes: os.totalmem(),
    runtime: `node ${process.version}`,
    host: os.hostname(),
  };
}

export function gpuInfo(gpu: Gpu): BenchRecord['gpu'] {
  const a = gpu.adapter;
  return {
    backend: a.backend,
    vendor: a.vendor,
    architecture: a.architecture,
    device: a.device || a.description,
    kind: a.kind,
    features: [...gpu.features].sort(),
  };
}

/** Peak resident set of this process so far (Node reports KiB). */
export function rssPeakBytes(): number {
  return process.resourceUsage().maxRSS * 1024;
}

export interface EnergyMeter {
  start(): void;
  stop(): Promise<Energy>;
}

const none = (reason: string): EnergyMeter => ({
  start() {},
  stop: async () => ({ source: null, joules: null, watts: null, reason }),
});

/** RAPL package counters (µJ, wrapping at max_energy_range_uj), when readable. */
function raplDomains(): { file: string; range: number }[] | string {
  const base = '/sys/class/powercap';
  let names: string[];
  try {
    names = readdirSync(base).filter((n) => /^intel-rapl:\d+$/.test(n));
  } catch {
    return 'no RAPL (/sys/class/powercap absent)';
  }
  if (!names.length) return 'no RAPL package domain under /sys/class/powercap';
  try {
    return names.map((n) => {
      const file = join(base, n, 'energy_uj');
      readFileSync(file, 'utf8');
      return { file, range: Number(readFileSync(join(base, n, 'max_energy_range_uj'), 'utf8')) };
    });
  } catch (e) {
    return (
      `RAPL not readable (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}; energy_uj is root-only ` +
      `on most kernels)`
    );
  }
}

function raplMeter(domains: { file: string; range: number }[]): EnergyMeter {
  const read = () => domains.map((d) => Number(readFileSync(d.file, 'utf8')));
  let t0 = 0;
  let e0: number[] = [];
  return {
    start() {
      e0 = read();
      t0 = performance.now();
    },
    async stop() {
      const e1 = read();
      const s = (performance.now() - t0) / 1e3;
      const uj = e1.reduce((sum, e, i) => sum + (e >= e0[i] ? e - e0[i] : e + domains[i].range - e0[i]), 0);
      return {
        source: 'rapl',
        joules: uj / 1e6,
        watts: s > 0 ? uj / 1e6 / s : null,
        reason: 'CPU package energy (the software adapter runs on the CPU)',
      };
    },
  };
}

/** nvidia-smi's power.draw every 50 ms while measuring; energy = mean power × time. */
function nvidiaMeter(): EnergyMeter {
  let child: ChildProcess | undefined;
  let samples: number[] = [];
  let t0 = 0;
  return {
    start() {
      samples = [];
      t0 = performance.now();
      child = spawn('nvidia-smi', ['--query-gpu=power.draw', '--format=csv,noheader,nounits', '-lms', '50'], {
        stdio: ['ignore', 'pipe', 'ignore'],
      });
      child.stdout!.on('data', (b: Buffer) => {
        for (const line of b.toString().split('\n'))
          if (line.trim() && Number.isFinite(Number(line))) samples.push(Number(line));
      });
      child.on('error', () => {});
    },
    async stop() {
      const s = (performance.now() - t0) / 1e3;
      child?.kill();
      child = undefined;
      if (!samples.length)
        return {
          source: null,
          joules: null,
          watts: null,
          reason: `no nvidia-smi power sample within ${(s * 1e3).toFixed(0)} ms (it samples every 50 ms or slower)`,
        };
      const watts = samples.reduce((a, b) => a + b, 0) / samples.length;
      return {
        source: 'nvidia-smi',
        joules: watts * s,
        watts,
        reason: `mean of ${samples.length} power.draw samples × wall time`,
      };
    },
  };
}

/** The energy source that fits the adapter: the GPU's own power for NVIDIA, the CPU's for a software adapter. */
export function energyMeter(gpu: Pick<Gpu, 'adapter'>): EnergyMeter {
  if (gpu.adapter.kind === 'software') {
    const d = raplDomains();
    return typeof d === 'string' ? none(d) : raplMeter(d);
  }
  if (/nvidia/i.test(`${gpu.adapter.vendor} ${gpu.adapter.description}`)) {
    const probe = spawnSync('nvidia-smi', ['--query-gpu=power.draw', '--format=csv,noheader,nounits'], {
      encoding: 'utf8',
      timeout: 5000,
    });
    if (probe.status === 0 && Number.isFinite(parseFloat(probe.stdout))) return nvidiaMeter();
    return none(
      probe.error
        ? `nvidia-smi not found (${(probe.error as NodeJS.ErrnoException).code})`
        : 'nvidia-smi reports no power.draw',
    );
  }
  return none(`no energy counter known for ${gpu.adapter.vendor || 'this'} ${gpu.adapter.kind} adapter`);
}
