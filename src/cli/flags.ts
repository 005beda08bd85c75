// Number flags, parsed once for every command: the text must spell a number in decimal notation (as `--set` and config
// files), within the flag's range. A bad value is one line naming the flag: `--lr must be a number ≥ 0, got -1`.
import { Flags } from '@oclif/core';
import type { OptionFlag } from '@oclif/core/interfaces';
import { HlmError } from '../errors.js';
import { fieldProblem, valueFromText, type FieldSpec } from '../model/overrides.js';
import { WEIGHT_FORMATS } from '../model/quantize.js';

/**
 * An error in a flag's value. oclif wraps what a flag parser throws in "Parsing --x" and a help hint over three lines;
 * the command prints `line` alone (src/cli/base.ts).
 */
export class FlagValueError extends HlmError {
  readonly line: string;
  constructor(line: string) {
    super(line);
    this.line = line;
  }
}

/** A flag parser whose user errors (HlmError) come out as one line. */
export function flagParser<T>(parse: (text: string) => T): (text: string) => Promise<T> {
  return async (text) => {
    try {
      return parse(text);
    } catch (e) {
      if (e instanceof HlmError && !(e instanceof FlagValueError)) throw new FlagValueError(e.message);
      throw e;
    }
  };
}

/** The value of a number flag's text, checked against the field's type and range. */
export function numberFromFlag(flag: string, text: string, spec: FieldSpec): number {
  const problem = fieldProblem(valueFromText(text, spec), spec);
  if (problem) throw new FlagValueError(`--${flag} must be ${problem}, got ${text}`);
  return valueFromText(text, spec) as number;
}

export interface NumberFlagOptions {
  /** Inclusive bounds. */
  min?: number;
  max?: number;
  /** Exclusive lower bound. */
  exclusiveMin?: number;
  description?: string;
  helpGroup?: string;
}

function numberFlag(type: 'int' | 'number', o: NumberFlagOptions & { default?: number }) {
  const spec: FieldSpec = { type, min: o.min, max: o.max, exclusiveMin: o.exclusiveMin };
  return Flags.custom<number>({
    description: o.description,
    helpGroup: o.helpGroup,
    default: o.default,
    parse: async (text, _ctx, flag) => numberFromFlag(flag.name, text, spec),
  })();
}

/** A floating-point flag: `floatFlag({ min: 0, default: 1, description })`. */
export function floatFlag(o: NumberFlagOptions & { default: number }): OptionFlag<number>;
export function floatFlag(o?: NumberFlagOptions): OptionFlag<number | undefined>;
export function floatFlag(o: NumberFlagOptions & { default?: number } = {}): OptionFlag<number | undefined> {
  return numberFlag('number', o);
}

/** An integer flag, with the same one-line errors as floatFlag. */
export function intFlag(o: NumberFlagOptions & { default: number }): OptionFlag<number>;
export function intFlag(o?: NumberFlagOptions): OptionFlag<number | undefined>;
export function intFlag(o: NumberFlagOptions & { default?: number } = {}): OptionFlag<number | undefined> {
  return numberFlag('int', o);
}

/** How an inference command stores the weights on the GPU (src/model/quantize.ts). */
export const weightsFlag = Flags.option({
  options: WEIGHT_FORMATS,
  default: 'f32' as const,
  description:
    'weight format on the GPU, quantized once at load: f32, f16 (packed halves), int8 (per output channel) or q4 ' +
    '(groups of 32, Q4_0); layer norms and biases stay f32',
})();
