// The server's GPU side: one queue in front of one device. Scoring work (the log-likelihoods
// of echoed prompts, what lm-eval's loglikelihood requests ask for) is batched: each pass
// takes the rows of every queued scoring job, oldest first, up to max-batch rows, and scores
// them in one forward pass of a Scorer (src/eval/score.ts). Scorers are built lazily per
// sequence-length bucket (T = a power of two from 16 up to n_positions, each with B = max-batch
// rows); they and the KV-cache Generator share one parameter buffer (their vocabulary heads store
// no logits: src/kernels/crossentropy.ts).
// A pass that would not be full first waits a few milliseconds for more rows. Generation jobs
// hold the Generator exclusively and run one at a time, in queue order with the scoring
// batches: batching generation across requests is not implemented.
import type { Gpu } from '../gpu/device.js';
import type { GpuScope } from '../gpu/scope.js';
import { HlmError } from '../errors.js';
import { Scorer, type RowScore, type ScoreRow } from '../eval/score.js';
import { Generator } from '../infer/generator.js';
import type { ModelConfig } from '../model/config.js';
import { Gpt2 } from '../model/gpt2.js';
import { log } from '../log.js';

/** The shortest scoring bucket. */
const MIN_BUCKET = 16;
/**
 * How long a pass that would not be full waits for more rows. Clients that send their next request as soon as an
 * answer comes would otherwise split into two groups taking turns, each filling half a pass.
 */
const BATCH_WINDOW_MS = 3;

interface ScoreJob {
  kind: 'score';
  rows: readonly ScoreRow[];
  argmaxLogprobs: boolean;
  /** Rows handed to a batch so far, and results in. */
  next: number;
  done: number;
  out: RowScore[];
  resolve: (r: RowScore[]) => void;
  reject: (e: unknown) => void;
}

interface GenerateJob {
  kind: 'generate';
  work: (gen: Generator) => Promise<unknown>;
  resolve: (r: unknown) => void;
  reject: (e: unknown) => void;
}

export interface EngineStats {
  /** Scoring passes and the rows they scored. */
  batches: number;
  rows: number;
  /** Generation jobs run. */
  generations: number;
}

export class Engine {
  private queue: (ScoreJob | GenerateJob)[] = [];
  private running = false;
  private idle: (() => void)[] = [];
  private readonly scorers = new Map<number, Scorer>();
  private generator?: Generator;
  readonly stats: EngineStats = { batches: 0, rows: 0, generations: 0 };

  private constructor(
    readonly gpu: Gpu,
    readonly config: ModelConfig,
    readonly maxBatch: number,
    private readonly scope: GpuScope,
    private readonly owner: Gpt2,
    /** The parameters on the host: the scorers' log p(argmax) (see Scorer). */
    private readonly params: Float32Array,
  ) {}

  /** Upload the parameters once; scorers and the generator are built on first use. */
  static async create(gpu: Gpu, config: ModelConfig, params: Float32Array, maxBatch: number): Promise<Engine> {
    if (!config.causal) throw new HlmError('the server scores and generates with decoders only (causal: true)');
    if (!(Number.isInteger(maxBatch) && maxBatch >= 1))
      throw new HlmError(`max-batch must be a positive integer, got ${maxBatch}`);
    const scope = gpu.scope('server');
    try {
      const owner = await Gpt2.create(gpu, config, { B: 1, T: 1, train: false, scope });
      owner.writeParams(params);
      return new Engine(gpu, config, maxBatch, scope, owner, params);
    } catch (e) {
      scope.release();
      throw e;
    }
  }

  /** The bucket for inputs of up to n tokens. */
  bucket(n: number): number {
    let T = MIN_BUCKET;
    while (T < n) T *= 2;
    return Math.min(T, this.config.n_positions);
  }

  private async scorer(T: number): Promise<Scorer> {
    let s = this.scorers.get(T);
    if (!s) {
      s = await Scorer.create(
        this.gpu,
        this.config,
        this.owner,
        { B: this.maxBatch, T, maxTargets: T },
        { scope: this.scope, hostParams: this.params },
      );
      this.scorers.set(T, s);
      log.debug(`server: built the ${this.maxBatch}x${T} scorer`);
    }
    return s;
  }

  /** Queue rows for scoring; they may share a pass with other jobs' rows. */
  score(rows: readonly ScoreRow[], argmaxLogprobs: boolean): Promise<RowScore[]> {
    if (rows.length === 0) return Promise.resolve([]);
    return new Promise((resolve, reject) => {
      this.queue.push({ kind: 'score', rows, argmaxLogprobs, next: 0, done: 0, out: [], resolve, reject });
      void this.pump();
    });
  }

  /** Queue work that needs the KV-cache generator; it runs alone, after what was queued before it. */
  generate<T>(work: (gen: Generator) => Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      this.queue.push({
        kind: 'generate',
        work,
        resolve: resolve as (r: unknown) => void,
        reject,
      });
      void this.pump();
    });
  }

  /** Jobs waiting or running. */
  get pending(): number {
    return this.queue.length + (this.running ? 1 : 0);
  }

  /** Resolves when the queue is empty and nothing runs. */
  drained(): Promise<void> {
    if (!this.running && this.queue.length === 0) return Promise.resolve();
    return new Promise((r) => this.idle.push(r));
  }

  private async pump(): Promise<void> {
    if (this.running) return;
    this.running = true;
    try {
      while (this.queue.length) {
        const head = this.queue[0];
        if (head.kind === 'generate') {
          this.queue.shift();
          try {
            this.generator ??= await Generator.create(this.gpu, this.config, this.owner);
            this.stats.generations++;
            head.resolve(await head.work(this.generator));
          } catch (e) {
            head.reject(e);
          }
        } else {
          if (this.queuedRows() < this.maxBatch) await new Promise((r) => setTimeout(r, BATCH_WINDOW_MS));
          await this.scoreBatch();
        }
      }
    } finally {
      this.running = false;
      for (const r of this.idle.splice(0)) r();
    }
  }

  private queuedRows(): number {
    let n = 0;
    for (const job of this.queue) if (job.kind === 'score') n += job.rows.length - job.next;
    return n;
  }

  /** One pass over up to maxBatch queued rows, oldest jobs first. */
  private async scoreBatch(): Promise<void> {
    const taken: { job: ScoreJob; i: number }[] = [];
    for (const job of this.queue) {
      if (job.kind !== 'score') continue;
      while (job.next < job.rows.length && taken.length < this.maxBatch) taken.push({ job, i: job.next++ });
      if (taken.length === this.maxBatch) break;
    }
    const jobs = new Set(taken.map((t) => t.job));
    try {
      const T = this.bucket(Math.max(...taken.map(({ job, i }) => job.rows[i].input.length)));
      const scorer = await this.scorer(T);
      const argmaxLogprobs = taken.some(({ job }) => job.argmaxLogprobs);
      const res = await scorer.score(
        taken.map(({ job, i }) => job.rows[i]),
        { argmaxLogprobs },
      );
      this.stats.batches++;
      this.stats.rows += taken.length;
      taken.forEach(({ job, i }, k) => {
        job.out[i] = res[k];
        job.done++;
      });
      for (const job of jobs) {
        if (job.done === job.rows.length) {
          this.queue.splice(this.queue.indexOf(job), 1);
          job.resolve(job.out);
        }
      }
    } catch (e) {
      // A failed pass fails every job it held a row of.
      for (const job of jobs) {
        this.queue.splice(this.queue.indexOf(job), 1);
        job.reject(e);
      }
    }
  }

  destroy(): void {
    this.generator?.destroy();
    this.scope.release();
  }
}
