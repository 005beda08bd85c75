// A pretraining run's directory, `<out>/`:
//   checkpoint/             the latest checkpoint (the path DESIGN.md promises; other commands read it)
//   checkpoints/step-<N>/   earlier checkpoints, the newest --keep minus one of them
//   metrics.jsonl           one JSON line per step and per evaluation, appended as the run goes
//   run.lock                pid and host of the one process writing here
// Opening it takes the lock, then puts the directory in order after whatever stopped the last
// process (a kill during a save: the newest complete checkpoint is renamed back into place, the
// temporaries of cut-short writes are removed, each step logged), and only then decides whether
// the run may start: a fresh run refuses a directory that holds a run unless told to resume or
// overwrite it, and a checkpoint directory holding anything but checkpoint files is refused
// before any work starts. A save moves the latest checkpoint to checkpoints/step-<N>/ and puts
// the new one in its place (model/checkpoint.ts), then drops the oldest beyond --keep.
import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  writeSync,
} from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { HlmError } from '../errors.js';
import { log } from '../log.js';
import {
  checkCheckpointDir,
  readCheckpointConfig,
  recoverCheckpoint,
  saveCheckpoint,
  type CheckpointContents,
} from '../model/checkpoint.js';
import { fsError, writeFileAtomic } from '../util/atomic-write.js';
import { acquireLock, processAlive, type Lock } from '../util/lock.js';
import { checkOutputDir } from '../util/output-check.js';

export const CHECKPOINT_DIR = 'checkpoint';
export const HISTORY_DIR = 'checkpoints';
export const METRICS_FILE = 'metrics.jsonl';
export const LOCK_FILE = 'run.lock';

/** How a run starts: a new run (refused where one exists), the existing one continued, or a new one replacing it. */
export type RunStart = 'fresh' | 'resume' | 'overwrite';

export interface RunDirOptions {
  start: RunStart;
  /** Checkpoints kept, the latest included (at least 1). */
  keep: number;
  /** Plain files the run's checkpoints hold besides the standard ones (run.json). */
  extraFiles: readonly string[];
}

const STEP_DIR = /^step-(\d+)$/;

export class RunDir {
  readonly checkpoint: string;
  readonly history: string;
  readonly metricsPath: string;
  private metricsFd?: number;
  /** Whether metrics.jsonl is a regular file (fsync applies; a pipe or device is only appended to). */
  private metricsRegular = true;
  /** The step of the checkpoint at `checkpoint`, when there is one. */
  private latest?: number;

  private constructor(
    readonly out: string,
    private readonly lock: Lock,
    private readonly o: RunDirOptions,
  ) {
    this.checkpoint = join(out, CHECKPOINT_DIR);
    this.history = join(out, HISTORY_DIR);
    this.metricsPath = join(out, METRICS_FILE);
  }

  /** Lock, recover and check `out` for a run that starts as `o.start` says (see the header). */
  static async open(out: string, o: RunDirOptions): Promise<RunDir> {
    const dir = resolve(out);
    checkOutputDir(dir, 'run directory');
    await mkdir(dir, { recursive: true }).catch((e) => {
      throw fsError(e, `cannot create run directory ${dir}`);
    });
    const lock = acquireLock(join(dir, LOCK_FILE), `run directory ${dir}`);
    if (lock.tookOver)
      log.warn(
        `${join(dir, LOCK_FILE)}: took over the lock of pid ${lock.tookOver.pid} (since ${lock.tookOver.started}), ` +
          'which is no longer running',
      );
    const run = new RunDir(dir, lock, o);
    try {
      await run.recover();
      await run.check();
    } catch (e) {
      lock.release();
      throw e;
    }
    return run;
  }

  /** The step-<N> directories under checkpoints/, newest first. */
  private earlier(): { dir: string; step: number }[] {
    if (!existsSync(this.history)) return [];
    return readdirSync(this.history)
      .map((name) => ({ name, m: STEP_DIR.exec(name) }))
      .filter((e) => e.m)
      .map((e) => ({ dir: join(this.history, e.name), step: Number(e.m![1]) }))
      .sort((a, b) => b.step - a.step);
  }

  private async recover(): Promise<void> {
    const done = await recoverCheckpoint(
      this.checkpoint,
      this.earlier().map((e) => e.dir),
    );
    // Temporaries of whole-file writes (writeFileAtomic, the lock) cut short: the lock says nobody else writes here.
    // Except a concurrent run that is still trying to take the lock: its lock temporary (or a stale lock it moved
    // aside) names its pid, and removing it would fail that run's hard link with ENOENT instead of the message
    // naming this run.
    for (const name of readdirSync(this.out)) {
      if (!/^\..+\.tmp-/.test(name) && !name.startsWith(`${LOCK_FILE}.stale-`)) continue;
      const writer = /\.(?:tmp|stale)-(\d+)-/.exec(name);
      if (writer && Number(writer[1]) !== process.pid && processAlive(Number(writer[1]))) continue;
      const path = join(this.out, name);
      if (!statSync(path).isFile()) continue;
      rmSync(path, { force: true });
      done.push(`removed ${path}, left by a write that was cut short`);
    }
    for (const line of done) log.warn(`recovery: ${line}`);
  }

  private async check(): Promise<void> {
    await checkCheckpointDir(this.checkpoint, this.o.extraFiles);
    if (existsSync(this.history)) {
      if (!statSync(this.history).isDirectory())
        throw new HlmError(`${this.history} is not a directory; hlm keeps earlier checkpoints there`);
      for (const name of readdirSync(this.history)) {
        if (!STEP_DIR.test(name))
          throw new HlmError(
            `${this.history} holds '${name}', which is not a checkpoint of this run (step-<N>); move it elsewhere`,
          );
        await checkCheckpointDir(join(this.history, name), this.o.extraFiles);
      }
    }
    const has = existsSync(join(this.checkpoint));
    if (has) this.latest = stepOf((await readCheckpointConfig(this.checkpoint)).hlm);
    const parts = [
      has ? `a checkpoint at step ${this.latest}` : '',
      this.earlier().length ? `${this.earlier().length} earlier checkpoint(s)` : '',
      existsSync(this.metricsPath) ? METRICS_FILE : '',
    ].filter(Boolean);
    if (this.o.start === 'fresh' && parts.length)
      throw new HlmError(
        `${this.out} already holds a run (${parts.join(', ')}): pass --resume to continue it, --overwrite to start ` +
          'over, or choose another --out',
      );
    if (this.o.start === 'resume' && !has) throw new HlmError(`--resume: no checkpoint in ${this.checkpoint}`);
    if (this.o.start === 'overwrite' && parts.length) {
      await rm(this.checkpoint, { recursive: true, force: true });
      await rm(this.history, { recursive: true, force: true });
      await rm(this.metricsPath, { force: true });
      this.latest = undefined;
      log.info(`--overwrite: removed the run in ${this.out} (${parts.join(', ')})`);
    }
  }

  /**
   * Start metrics.jsonl: empty for a new run; for a resumed one, the rows up to `step` (the checkpoint's) are kept and
   * later ones (written after the checkpoint, then lost with the process) dropped, so that each step appears once.
   */
  openMetrics(resumeStep?: number): void {
    const what = 'metrics';
    // A special file in its place (a pipe, a device) is only appended to.
    const regular = statSync(this.metricsPath, { throwIfNoEntry: false })?.isFile() ?? true;
    this.metricsRegular = regular;
    if (resumeStep === undefined) writeFileAtomic(this.metricsPath, '', what);
    else if (regular && existsSync(this.metricsPath)) {
      const text = readFileSync(this.metricsPath, 'utf8');
      const lines = text.split('\n');
      // The last piece is '' after a final newline, or a row cut short by a kill: never kept.
      const keep = lines.slice(0, -1).filter((l) => {
        try {
          const row = JSON.parse(l) as { step?: unknown };
          return typeof row.step === 'number' && row.step <= resumeStep;
        } catch {
          return false;
        }
      });
      const dropped = lines.filter(Boolean).length - keep.length;
      if (dropped) {
        writeFileAtomic(this.metricsPath, keep.map((l) => l + '\n').join(''), what);
        log.warn(`${this.metricsPath}: dropped ${dropped} row(s) written after the checkpoint of step ${resumeStep}`);
      }
    }
    try {
      this.metricsFd = openSync(this.metricsPath, 'a');
    } catch (e) {
      throw fsError(e, `cannot write metrics ${this.metricsPath}`);
    }
  }

  /** Append rows (whole lines) to metrics.jsonl. */
  appendMetrics(text: string): void {
    if (!text) return;
    try {
      const bytes = Buffer.from(text, 'utf8');
      for (let at = 0; at < bytes.length;) at += writeSync(this.metricsFd!, bytes, at);
    } catch (e) {
      throw fsError(e, `cannot write metrics ${this.metricsPath}`);
    }
  }

  /**
   * Save the checkpoint of `step`: metrics.jsonl is made durable first (its rows up to the step exist before the
   * checkpoint says it reached it), the latest checkpoint moves to checkpoints/step-<N>/, and the oldest beyond
   * --keep are removed.
   */
  async save(c: CheckpointContents, step: number): Promise<void> {
    try {
      if (this.metricsFd !== undefined && this.metricsRegular) fsyncSync(this.metricsFd);
    } catch (e) {
      throw fsError(e, `cannot write metrics ${this.metricsPath}`);
    }
    let previous: string | undefined;
    if (this.o.keep > 1 && this.latest !== undefined && this.latest !== step) {
      await mkdir(this.history, { recursive: true }).catch((e) => {
        throw fsError(e, `cannot save checkpoint ${this.checkpoint}`);
      });
      previous = join(this.history, `step-${this.latest}`);
    }
    await saveCheckpoint(this.checkpoint, c, { previous });
    this.latest = step;
    for (const old of this.earlier().slice(this.o.keep - 1)) {
      await rm(old.dir, { recursive: true, force: true }).catch((e) => {
        throw fsError(e, `cannot remove the old checkpoint ${old.dir}`);
      });
    }
  }

  /** Close metrics.jsonl and release the lock. */
  close(): void {
    if (this.metricsFd !== undefined) closeSync(this.metricsFd);
    this.metricsFd = undefined;
    this.lock.release();
  }
}

function stepOf(hlm: Record<string, unknown>): number {
  const step = hlm.step;
  return typeof step === 'number' ? step : 0;
}
