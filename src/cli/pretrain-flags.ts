// The flags of `hlm pretrain`, shared with `hlm compare-objectives` (same run, both objectives), built from the
// settings table of src/train/pretrain-settings.ts: names, types, ranges, defaults and help are declared there once.
import { Flags } from '@oclif/core';
import type { FlagInput } from '@oclif/core/interfaces';
import { deviceFlag } from './base.js';
import { floatFlag, intFlag } from './flags.js';
import { formatEta, progressOut } from './progress.js';
import { pretrainSettings, type PretrainOptions, type Setting, type SettingName } from '../train/pretrain-settings.js';
import type { Progress } from '../train/pretrain.js';
import type { PrecisionOptions } from '../train/precision.js';

function settingFlag(s: Setting) {
  const common = { description: s.description };
  switch (s.type) {
    case 'enum':
      return Flags.option({ ...common, options: s.values!, default: s.default as string | undefined })();
    case 'boolean':
      return Flags.boolean({ ...common, default: s.default as boolean });
    case 'int':
    case 'number': {
      const range = { ...common, min: s.min, max: s.max, exclusiveMin: s.exclusiveMin };
      const make = s.type === 'int' ? intFlag : floatFlag;
      return s.default === undefined ? make(range) : make({ ...range, default: s.default as number });
    }
    case 'string':
      return s.multiple
        ? Flags.string({ ...common, multiple: true, default: s.default as string[] })
        : Flags.string({ ...common, default: s.default as string | undefined });
  }
}

/**
 * The flags of the settings, less `omit`, with other defaults where `defaults` says; typed loosely: pretrainOptions
 * reads the values by the table, which types them.
 */
export function pretrainFlags(
  o: { omit?: readonly SettingName[]; defaults?: Partial<Record<SettingName, Setting['default']>> } = {},
): FlagInput {
  const flags: FlagInput = {};
  for (const { name, flag, setting } of pretrainSettings()) {
    if (o.omit?.includes(name)) continue;
    flags[flag] = settingFlag(name in (o.defaults ?? {}) ? { ...setting, default: o.defaults![name] } : setting);
  }
  return { ...flags, device: deviceFlag };
}

const PRECISION_SETTINGS = ['precision', 'lossScale', 'lossScaleGrowth'] as const;

/** --precision, --loss-scale and --loss-scale-growth alone, as pretrain has them (finetune-glue, bench). */
export function precisionFlags(): FlagInput {
  const flags: FlagInput = {};
  for (const { name, flag, setting } of pretrainSettings())
    if ((PRECISION_SETTINGS as readonly string[]).includes(name)) flags[flag] = settingFlag(setting);
  return flags;
}

/** The parsed precisionFlags as src/train/precision.ts's options. */
export function precisionOptions(flags: Record<string, unknown>): PrecisionOptions {
  return {
    precision: flags['precision'] as PrecisionOptions['precision'],
    lossScale: flags['loss-scale'] as number | undefined,
    lossScaleGrowth: flags['loss-scale-growth'] as number | undefined,
  };
}

/** The library options for the parsed flags; `explicit` are the flags the user typed. */
export function pretrainOptions(flags: Record<string, unknown>, explicit: readonly string[] = []): PretrainOptions {
  const o: Record<string, unknown> = {};
  const typed: string[] = [];
  for (const { name, flag } of pretrainSettings()) {
    o[name] = flags[flag];
    if (explicit.includes(flag)) typed.push(name);
  }
  return { ...(o as unknown as PretrainOptions), explicit: typed as PretrainOptions['explicit'] };
}

/** Pretraining progress: step, loss, tokens/s and ETA (src/cli/progress.ts decides where it goes). */
export function pretrainProgress(tty: boolean): Progress {
  const out = progressOut(tty);
  return (p) =>
    out(
      `step ${p.step}/${p.steps}  loss ${p.loss.toFixed(4)}  ${Math.round(p.tokensPerSecond)} tok/s  ETA ` +
        formatEta(p.etaSeconds),
      {
        step: p.step,
        steps: p.steps,
        loss: p.loss,
        tokens_per_s: Math.round(p.tokensPerSecond),
        eta_s: Math.round(p.etaSeconds),
      },
      p.step === p.steps,
    );
}

/** The flags the user typed (not defaults), from oclif's parse metadata. */
export function explicitFlags(
  metadata: { flags: Record<string, { setFromDefault?: boolean }> },
  flags: Record<string, unknown>,
): string[] {
  return Object.keys(flags).filter((k) => flags[k] !== undefined && !metadata.flags[k]?.setFromDefault);
}
