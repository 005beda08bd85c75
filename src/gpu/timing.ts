// GPU time per dispatch from timestamp queries, for `hlm bench`. Off unless a profiler is
// attached to the Gpu (gpu.profiler): then Gpu.submit records every dispatch in a compute pass
// of its own with a begin and an end timestamp, so times can be attributed to dispatches (and
// from there to a training step's phases). One pass per dispatch costs a little, so the bench
// times wall-clock latency with the profiler detached and GPU time in separate repetitions.
import type { Dispatch, DispatchProfiler, Gpu } from './device.js';

/** WebGPU's cap on a query set. */
const MAX_QUERIES = 4096;

export interface DispatchTime {
  dispatch: Dispatch;
  ms: number;
}

export class GpuProfiler implements DispatchProfiler {
  private slots: Dispatch[] = [];
  /** Dispatches submitted past the query set's capacity: their time is missing. */
  overflow = 0;
  private readonly querySet: GPUQuerySet;
  private readonly resolved: GPUBuffer;
  private readonly staging: GPUBuffer;

  private constructor(
    private readonly gpu: Gpu,
    readonly capacity: number,
  ) {
    const { device } = gpu;
    // Raw device buffers, not gpu.buffer: the measurement must not count as hlm's memory.
    this.querySet = device.createQuerySet({ label: 'profiler', type: 'timestamp', count: 2 * capacity });
    this.resolved = device.createBuffer({
      label: 'profiler resolve',
      size: 16 * capacity,
      usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC,
    });
    this.staging = device.createBuffer({
      label: 'profiler readback',
      size: 16 * capacity,
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
  }

  /** A profiler, or undefined when the device lacks `timestamp-query`. */
  static create(gpu: Gpu, capacity = MAX_QUERIES / 2): GpuProfiler | undefined {
    if (!gpu.features.has('timestamp-query')) return undefined;
    return new GpuProfiler(gpu, Math.max(1, Math.min(capacity, MAX_QUERIES / 2)));
  }

  /** Forget what was recorded: the next submits start at slot 0. */
  begin(): void {
    this.slots = [];
    this.overflow = 0;
  }

  /** Timestamp writes for the pass that will hold `d` (called by Gpu.submit). */
  writes(d: Dispatch): GPUComputePassTimestampWrites | undefined {
    if (this.slots.length === this.capacity) {
      this.overflow++;
      return undefined;
    }
    const i = this.slots.push(d) - 1;
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 };
  }

  /** Resolve the queries written so far into a buffer (called by Gpu.submit before finishing). */
  resolve(enc: GPUCommandEncoder): void {
    if (this.slots.length) enc.resolveQuerySet(this.querySet, 0, 2 * this.slots.length, this.resolved, 0);
  }

  /** Time of each dispatch submitted since begin(), in submission order (waits for the GPU). */
  async read(): Promise<DispatchTime[]> {
    const n = this.slots.length;
    if (!n) return [];
    const { device } = this.gpu;
    const enc = device.createCommandEncoder({ label: 'profiler readback' });
    enc.copyBufferToBuffer(this.resolved, 0, this.staging, 0, 16 * n);
    device.queue.submit([enc.finish()]);
    await this.staging.mapAsync(GPUMapMode.READ, 0, 16 * n);
    const ticks = new BigUint64Array(this.staging.getMappedRange(0, 16 * n).slice(0));
    this.staging.unmap();
    // Timestamps are nanoseconds; a pass whose end precedes its begin (a reset counter) counts 0.
    return this.slots.map((dispatch, i) => ({
      dispatch,
      ms: ticks[2 * i + 1] > ticks[2 * i] ? Number(ticks[2 * i + 1] - ticks[2 * i]) / 1e6 : 0,
    }));
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolved.destroy();
    this.staging.destroy();
  }
}
