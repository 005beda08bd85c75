// An experiment directory and its result.json, phase by phase. Opening one either starts a fresh
// result (every phase pending) or reads the one there, refusing it when it was made with other
// arguments. Each phase that is not done runs, and the result is written atomically when it
// starts and when it ends (done or failed), so a rerun with the same --out and arguments skips
// what finished and redoes what did not. One process at a time holds the directory (<out>/.lock).
import { existsSync, mkdirSync, readdirSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join, resolve } from 'node:path';
import { HlmError } from '../errors.js';
import { log } from '../log.js';
import { acquireLock, type Lock } from '../util/lock.js';
import {
  newExperimentResult,
  type Budget,
  type ExperimentResult,
  type Phase,
  type Score,
  type TrainingRun,
} from '../report/experiment.js';
import { writeReport, writeResult, type Section, type WrittenReport } from '../report/report.js';
import { readExperimentResult } from '../report/result-schema.js';

export interface ExperimentSpec {
  out: string;
  experiment: string;
  title: string;
  variantTitle: string;
  /** What identifies the experiment: a rerun must give the same (compared as JSON). */
  arguments: Record<string, unknown>;
  /** How each argument is spelt on the command line, for messages (default: its key). */
  flagNames?: Record<string, string>;
  /** Other settings worth recording (derived values, defaults used). */
  settings?: Record<string, unknown>;
  phases: readonly string[];
  planned: Budget;
  budgetScope?: string;
  build: ExperimentResult['build'];
  hardware: ExperimentResult['hardware'];
  notes?: string[];
}

/** What a phase produced: its training runs and scores (replacing any of an earlier attempt). */
export interface PhaseOutput {
  runs?: TrainingRun[];
  scores?: Score[];
}

const LOCK = '.lock';

function describe(v: unknown): string {
  return v === undefined ? '(not given)' : Array.isArray(v) ? v.join(',') : String(v);
}

export class ExperimentDir {
  readonly out: string;
  private lock: Lock;

  private constructor(
    out: string,
    lock: Lock,
    readonly result: ExperimentResult,
    /** Whether result.json was there already (a resumed experiment). */
    readonly resumed: boolean,
  ) {
    this.out = out;
    this.lock = lock;
  }

  /** Opens (or starts) the experiment in spec.out; release() when done. */
  static open(spec: ExperimentSpec): ExperimentDir {
    const out = resolve(spec.out);
    const file = join(out, 'result.json');
    if (!existsSync(file) && existsSync(out) && readdirSync(out).some((n) => n !== LOCK))
      throw new HlmError(`${out} is not empty and holds no experiment (result.json): choose another --out`);
    mkdirSync(out, { recursive: true });
    const lock = acquireLock(join(out, LOCK), `experiment directory ${out}`);
    try {
      if (existsSync(file)) {
        const result = readExperimentResult(file);
        ExperimentDir.checkSame(result, spec, file);
        const known = new Set(result.phases.map((p) => p.name));
        const missing = spec.phases.filter((p) => !known.has(p));
        if (missing.length) throw new HlmError(`${file} has no phase ${missing.join(', ')}: choose another --out`);
        if (result.hardware.gpu?.device !== spec.hardware.gpu?.device)
          result.notes.push(
            `Resumed on another device (${spec.hardware.gpu?.device ?? 'none'}; started on ` +
              `${result.hardware.gpu?.device ?? 'none'}).`,
          );
        const done = result.phases.filter((p) => p.status === 'done').map((p) => p.name);
        log.info(`resuming ${file}: ${done.length} of ${result.phases.length} phases done`);
        return new ExperimentDir(out, lock, result, true);
      }
      const result = newExperimentResult({
        experiment: spec.experiment,
        title: spec.title,
        variantTitle: spec.variantTitle,
        build: spec.build,
        hardware: spec.hardware,
        settings: { arguments: spec.arguments, ...spec.settings },
        planned: spec.planned,
        phases: spec.phases,
      });
      if (spec.budgetScope) result.budget.scope = spec.budgetScope;
      result.notes.push(...(spec.notes ?? []));
      const dir = new ExperimentDir(out, lock, result, false);
      dir.save();
      return dir;
    } catch (err) {
      lock.release();
      throw err;
    }
  }

  private static checkSame(result: ExperimentResult, spec: ExperimentSpec, file: string): void {
    if (result.experiment !== spec.experiment)
      throw new HlmError(
        `${file} holds a "${result.experiment}" experiment, not "${spec.experiment}": choose another --out`,
      );
    const recorded = (result.settings.arguments ?? {}) as Record<string, unknown>;
    const keys = [...new Set([...Object.keys(recorded), ...Object.keys(spec.arguments)])];
    const differ = keys.filter((k) => JSON.stringify(recorded[k]) !== JSON.stringify(spec.arguments[k]));
    if (differ.length) {
      const flag = (k: string) => `--${spec.flagNames?.[k] ?? k}`;
      const was = differ.map((k) => `${flag(k)} ${describe(recorded[k])}`).join(', ');
      const now = differ.map((k) => `${flag(k)} ${describe(spec.arguments[k])}`).join(', ');
      throw new HlmError(
        `${file} was made with ${was}; this command gives ${now}. Rerun with the recorded arguments to resume, or ` +
          `choose another --out`,
      );
    }
  }

  phase(name: string): Phase {
    const p = this.result.phases.find((x) => x.name === name);
    if (!p) throw new Error(`no phase ${name}`);
    return p;
  }

  isDone(name: string): boolean {
    return this.phase(name).status === 'done';
  }

  /**
   * Runs a phase unless it is done: its runs and scores replace those of an earlier attempt, and
   * the result is written before and after. A failure is recorded (status failed, the message)
   * and thrown on.
   */
  async run(name: string, body: () => Promise<PhaseOutput>): Promise<boolean> {
    const p = this.phase(name);
    if (p.status === 'done') {
      log.info(`phase ${name}: done before, skipped`);
      return false;
    }
    log.info(`phase ${name}: ${p.status === 'pending' ? 'starting' : `starting again (was ${p.status})`}`);
    p.status = 'running';
    p.started = new Date().toISOString();
    p.loadStart = loadavg();
    delete p.error;
    delete p.loadEnd;
    this.save();
    const t0 = performance.now();
    const end = () => {
      p.seconds = (p.seconds ?? 0) + (performance.now() - t0) / 1000;
      p.finished = new Date().toISOString();
      p.loadEnd = loadavg();
    };
    try {
      const output = await body();
      this.result.runs = this.result.runs.filter((r) => r.phase !== name).concat(output.runs ?? []);
      this.result.scores = this.result.scores.filter((s) => s.phase !== name).concat(output.scores ?? []);
      end();
      p.status = 'done';
      this.save();
      log.info(`phase ${name}: done in ${(p.seconds ?? 0).toFixed(1)} s`);
      return true;
    } catch (err) {
      end();
      p.status = 'failed';
      p.error = (err as Error).message;
      this.save();
      throw err;
    }
  }

  /** result.json, written atomically. */
  save(): string {
    this.result.updated = new Date().toISOString();
    return writeResult(this.out, this.result);
  }

  /** result.json, report.md, report.html and plots/. */
  report(extraSections: Section[] = []): Promise<WrittenReport> {
    this.result.updated = new Date().toISOString();
    return writeReport(this.out, this.result, { extraSections });
  }

  release(): void {
    this.lock.release();
  }
}
