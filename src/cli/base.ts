// What every hlm command shares: --json (oclif prints the returned value), --log-level,
// clean messages for user errors, and closing the GPU so the process exits promptly.
import { Command, Flags } from '@oclif/core';
import type { LevelWithSilent } from 'pino';
import { HlmError } from '../errors.js';
import { FlagValueError } from './flags.js';
import { Gpu, type DeviceChoice } from '../gpu/device.js';
import { LOG_LEVELS, log, setLogLevel } from '../log.js';

export const deviceFlag = Flags.string({
  description: 'adapter: auto (hardware, then llvmpipe, then SwiftShader), gpu, cpu, or part of an adapter name',
  default: 'auto',
});

export abstract class HlmCommand extends Command {
  static override enableJsonFlag = true;
  static override baseFlags = {
    'log-level': Flags.option({
      options: LOG_LEVELS,
      default: 'info' as const,
      helpGroup: 'GLOBAL',
      summary: 'log level (logs go to stderr)',
    })(),
  };

  private gpu?: Gpu;

  override async init(): Promise<void> {
    await super.init();
    const level = this.argv.find((a, i, all) => all[i - 1] === '--log-level' || a.startsWith('--log-level='));
    const value = level?.replace(/^--log-level=/, '');
    if (value && (LOG_LEVELS as readonly string[]).includes(value)) setLogLevel(value as LevelWithSilent);
  }

  protected async openGpu(choice: DeviceChoice): Promise<Gpu> {
    this.gpu = await Gpu.open(choice);
    log.info(`device: ${this.gpu.name}`);
    return this.gpu;
  }

  protected override async catch(err: Error & { exitCode?: number }): Promise<unknown> {
    if (err instanceof HlmError) {
      const message = err instanceof FlagValueError ? err.line : err.message;
      if (this.jsonEnabled()) this.logJson({ error: { name: err.name, message } });
      else process.stderr.write(`hlm: ${message}\n`);
      this.gpu?.destroy();
      process.exit(err.exitCode);
    }
    return super.catch(err);
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    this.gpu?.destroy();
    return super.finally(err);
  }
}
