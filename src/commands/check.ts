import { Flags } from '@oclif/core';
import { HlmCommand, deviceFlag } from '../cli/base.js';
import { HlmError } from '../errors.js';
import { selfCheck, type SelfCheckResult } from '../check/selfcheck.js';

export default class Check extends HlmCommand {
  static override summary = 'Run every kernel on the chosen device against its float64 reference, and time a matmul.';
  static override description =
    'A self-test for a new machine: each kernel is run on small odd shapes with fresh random inputs and compared ' +
    'with a float64 CPU reference (relative error against a tolerance), then one square f32 matmul is timed ' +
    '(samples of products queued back to back, at least 25 ms each). ' +
    'Exits 1 if any kernel is off.';
  static override examples = [
    '<%= config.bin %> check',
    '<%= config.bin %> check --device cpu --size 256',
    '<%= config.bin %> check --device gpu --size 4096 --json',
  ];
  static override flags = {
    device: deviceFlag,
    size: Flags.integer({
      description: 'n for the timed n×n×n matmul (default: 4096 on a GPU, 256 in software)',
      min: 1,
    }),
    reps: Flags.integer({ description: 'timed samples (the median is reported)', default: 5, min: 1 }),
    seed: Flags.integer({ description: 'seed for the random inputs (default: fresh each run)' }),
  };

  async run(): Promise<SelfCheckResult> {
    const { flags } = await this.parse(Check);
    const gpu = await this.openGpu(flags.device);
    const size = flags.size ?? (gpu.adapter.kind === 'hardware' ? 4096 : 256);
    const result = await selfCheck(gpu, { size, reps: flags.reps, seed: flags.seed });
    this.log(`device: ${result.device}`);
    for (const c of result.checks) {
      this.log(
        `${c.ok ? 'ok  ' : 'FAIL'}  ${c.kernel.padEnd(32)} ${c.shape.padEnd(18)} rel. error ` +
          `${c.relErr.toExponential(2)} (tolerance ${c.tolerance.toExponential(0)})`,
      );
    }
    for (const t of result.throughput)
      this.log(
        `${t.kernel} ${t.shape}: ${t.ms.toFixed(2)} ms, ${t.gflops.toFixed(1)} GFLOP/s ` +
          `(median of ${flags.reps} samples of ${t.perSample} back to back)`,
      );
    if (!result.ok) {
      this.failedResult = result;
      throw new HlmError(`${result.checks.filter((c) => !c.ok).length} kernel check(s) failed on ${result.device}`);
    }
    return result;
  }
}
