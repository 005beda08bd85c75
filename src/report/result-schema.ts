// result.json against hlm.experiment.schema.json, with the validator hlm.bench/1 records use
// (src/bench/schema.ts), plus the checks a schema of that size cannot say: unique run ids, runs
// and scores that name a phase of the experiment.
import { readFileSync } from 'node:fs';
import { loadSchema, validate, type Schema } from '../bench/schema.js';
import { HlmError } from '../errors.js';
import type { ExperimentResult } from './experiment.js';

/** hlm.experiment/1, from the JSON file beside this module (copied into the build by scripts/build.mjs). */
export function experimentSchema(): Schema {
  return loadSchema(new URL('./hlm.experiment.schema.json', import.meta.url));
}

/** Every violation, as "path: message" (empty when the result is valid). */
export function validateExperimentResult(value: unknown): string[] {
  const errors = validate(experimentSchema(), value);
  if (errors.length) return errors;
  const r = value as ExperimentResult;
  const phases = new Set(r.phases.map((p) => p.name));
  if (phases.size !== r.phases.length) errors.push('$.phases: phase names repeat');
  const ids = new Set<string>();
  r.runs.forEach((run, i) => {
    if (ids.has(run.id)) errors.push(`$.runs[${i}].id: "${run.id}" repeats`);
    ids.add(run.id);
    if (!phases.has(run.phase)) errors.push(`$.runs[${i}].phase: "${run.phase}" is not a phase of the experiment`);
  });
  r.scores.forEach((s, i) => {
    if (!phases.has(s.phase)) errors.push(`$.scores[${i}].phase: "${s.phase}" is not a phase of the experiment`);
  });
  return errors;
}

/** Throws an HlmError naming `source` and the first violations. */
export function assertExperimentResult(value: unknown, source: string): asserts value is ExperimentResult {
  const errors = validateExperimentResult(value);
  if (errors.length) {
    const more = errors.length > 5 ? ` (and ${errors.length - 5} more)` : '';
    throw new HlmError(`${source} is not a valid hlm.experiment/1 result: ${errors.slice(0, 5).join('; ')}${more}`);
  }
}

/** Reads and checks a result.json (to resume an experiment or to write its report again). */
export function readExperimentResult(file: string): ExperimentResult {
  let value: unknown;
  try {
    value = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new HlmError(`cannot read ${file}: ${(err as Error).message}`);
  }
  assertExperimentResult(value, file);
  return value;
}
