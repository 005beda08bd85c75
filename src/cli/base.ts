// What every hlm command shares: --json (oclif prints the returned value), --log-level,
// clean messages for user errors, and closing the GPU so the process exits promptly. A user
// error is one `hlm: …` line on stderr (with --json, {"error": {name, message}} on stdout) and
// exit 1 (or its own code: 130/143 after a signal): an HlmError, a filesystem error that escaped
// the code that knows what it was writing (its message names the path), or a command-line
// mistake, which gets a second line pointing to --help instead of oclif's whole help text.
import { Command, Flags } from '@oclif/core';
import type { LevelWithSilent } from 'pino';
import { HlmError } from '../errors.js';
import { FlagValueError } from './flags.js';
import { Gpu, type DeviceChoice } from '../gpu/device.js';
import { LOG_LEVELS, log, setLogLevel } from '../log.js';
import { nearestName } from '../model/overrides.js';

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
  /** With --json, what a command had found before it failed: printed with the error, one JSON document. */
  protected failedResult?: object;

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
    const user = this.userError(err);
    if (user) {
      if (this.jsonEnabled()) this.logJson({ ...this.failedResult, error: { name: user.name, message: user.message } });
      else process.stderr.write(`hlm: ${user.message}\n${user.hint ? `${user.hint}\n` : ''}`);
      this.gpu?.destroy();
      process.exit(user.exitCode);
    }
    return super.catch(err);
  }

  /** With --json, every error has its message (a Node error's is not enumerable, so oclif's JSON lost it). */
  protected override toErrorJson(err: unknown): unknown {
    const e = err as Partial<NodeJS.ErrnoException>;
    return {
      error: { name: e.name ?? 'Error', message: e.message ?? String(err), ...(e.code ? { code: e.code } : {}) },
    };
  }

  /** The error as a user error (message, exit code, maybe a hint), or undefined for a bug (it keeps its stack). */
  private userError(
    err: Error & { exitCode?: number },
  ): { name: string; message: string; exitCode: number; hint?: string } | undefined {
    if (err instanceof HlmError)
      return {
        name: err.name,
        message: err instanceof FlagValueError ? err.line : err.message,
        exitCode: err.exitCode,
      };
    const e = err as Partial<NodeJS.ErrnoException>;
    // Not `instanceof`: errors from node:fs come from another realm under jest's vm modules.
    if (typeof e.syscall === 'string' && typeof e.code === 'string')
      return { name: 'FilesystemError', message: err.message, exitCode: 1 };
    // oclif's parser errors (CLIParseError has `parse`; a flag missing its value is a bare CLIError, `oclif`).
    const parse = err as Error & { parse?: unknown; oclif?: unknown; flags?: string[] };
    if ((parse.parse !== undefined || parse.oclif !== undefined) && !/^EEXIT/.test(err.message ?? '')) {
      const lines = err.message
        .replace(new RegExp(`${String.fromCharCode(27)}\\[[0-9;]*m`, 'g'), '') // colours
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l && !/^See more help with --help$/.test(l) && !/^The following errors? occurred:$/.test(l));
      let message = lines.join('; ');
      const flag = parse.flags?.[0]?.replace(/^--?/, '').split('=')[0];
      const known = Object.keys((this.constructor as typeof Command).flags ?? {});
      const near = flag ? nearestName(flag, known) : undefined;
      if (near) message += ` (did you mean --${near}?)`;
      const id = (this.id ?? '').replaceAll(':', ' ');
      return { name: 'UsageError', message, exitCode: 1, hint: `hint: \`hlm ${id} --help\` lists every flag` };
    }
    return undefined;
  }

  protected override async finally(err: Error | undefined): Promise<unknown> {
    this.gpu?.destroy();
    return super.finally(err);
  }
}
