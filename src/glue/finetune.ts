// Fine-tuning a sequence classifier: the whole network plus the score head, on variable-length
// inputs. Short inputs (most of GLUE) would waste most of a fixed B×T step on padding, so the
// network is built at a few lengths ("buckets": 16, 32, 64, ... up to max-seq-len) that all
// share one parameter and one gradient buffer; each batch runs in the smallest bucket that
// holds its longest input, right-padded, with attention hiding the padding keys. A step is
// one command encoder per micro-batch as in pretraining: clear gradients and the loss, forward,
// head, backward (each micro-batch in its own bucket, adding into the shared gradients), then
// clip, the step guard (no update from a non-finite loss), AdamW, and a copy of the loss into a
// ring read back only when progress is printed. Mixed precision (`precision: 'f16'`) runs the
// network's products on f16 copies (src/model/gpt2.ts) with loss scaling: the classifier loss
// multiplies its gradient by the scale the step guard keeps; the head's own small products stay f32.
import type { Command, Gpu } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { createClassifierHead, type ClassifierHead, type Pooling } from '../model/classifier.js';
import { Gpt2, type Precision } from '../model/gpt2.js';
import { GUARD_BYTES, GUARD_SCALE } from '../kernels/step-guard.js';
import { createUpdate, type Update, type UpdateOptions } from '../train/update.js';

export interface FinetunerOptions extends UpdateOptions {
  /** Rows of a micro-batch. */
  batchSize: number;
  /** Micro-batches per optimizer step (default 1): a step takes up to batchSize·gradAccum rows. */
  gradAccum?: number;
  maxSeqLen: number;
  pooling: Pooling;
  /** The products' operands (default f32); f16 is mixed precision, usually with lossScaling. */
  precision?: Precision;
}

interface Bucket {
  T: number;
  model: Gpt2;
  head: ClassifierHead;
  /** Forward, head and backward of one micro-batch. */
  pass: Command[];
}

/** Bucket lengths: powers of two from 16 below maxLen, then maxLen itself. */
export function bucketLengths(maxLen: number): number[] {
  const out: number[] = [];
  for (let T = 16; T < maxLen; T *= 2) out.push(T);
  out.push(maxLen);
  return out;
}

const HISTORY = 256;

export class Finetuner {
  private pending = 0;
  private constructor(
    readonly gpu: Gpu,
    readonly config: ModelConfig,
    readonly opts: FinetunerOptions,
    private readonly buckets: Bucket[],
    private readonly update: Update,
    private readonly history: GPUBuffer,
    /** The step's loss, built up by every bucket's head. */
    private readonly loss: GPUBuffer,
    private readonly guard: GPUBuffer,
  ) {}

  /** With loss scaling: steps skipped for an f16 overflow so far (since the last reset). */
  async overflowSkips(): Promise<number> {
    return (await this.update.readLossScale())?.overflows ?? 0;
  }

  get gradAccum(): number {
    return this.opts.gradAccum ?? 1;
  }

  static async create(gpu: Gpu, config: ModelConfig, opts: FinetunerOptions): Promise<Finetuner> {
    if (opts.maxSeqLen > config.n_positions)
      throw new HlmError(`max-seq-len ${opts.maxSeqLen} exceeds the model's n_positions ${config.n_positions}`);
    const accum = opts.gradAccum ?? 1;
    if (!(Number.isInteger(accum) && accum >= 1))
      throw new HlmError(`gradient accumulation must be a positive integer, got ${accum}`);
    const lengths = bucketLengths(opts.maxSeqLen);
    const buckets: Bucket[] = [];
    const loss = gpu.buffer('step loss', 16);
    // The step guard's buffer holds the loss scale the heads read: allocated before them.
    const guard = gpu.buffer('step guard', GUARD_BYTES);
    const gradScale = opts.lossScaling ? { buffer: guard, offset: GUARD_SCALE } : undefined;
    let owner: Gpt2 | undefined;
    for (const T of [...lengths].reverse()) {
      const model = await Gpt2.create(gpu, config, {
        B: opts.batchSize,
        T,
        train: true,
        padding: true,
        shareWith: owner,
        precision: opts.precision,
      });
      owner ??= model;
      const head = await createClassifierHead(model, opts.pooling, loss, gradScale);
      buckets.unshift({ T, model, head, pass: [...model.forward, ...head.train, ...model.backward] });
    }
    const update = await createUpdate(gpu, owner!, opts, guard);
    return new Finetuner(gpu, config, opts, buckets, update, gpu.buffer('loss history', HISTORY * 4), loss, guard);
  }

  private bucketFor(len: number): Bucket {
    const b = this.buckets.find((x) => x.T >= len);
    if (!b) throw new HlmError(`an input of ${len} tokens is longer than max-seq-len ${this.opts.maxSeqLen}`);
    return b;
  }

  /** Start over from these parameters, with fresh optimizer moments. */
  reset(params: Float32Array): void {
    this.buckets[this.buckets.length - 1].model.writeParams(params);
    const clear: Command[] = [this.update.m, this.update.v]
      .filter((b): b is GPUBuffer => !!b)
      .map((b) => ({ clear: b }));
    this.gpu.submit(clear, 'reset optimizer');
    this.update.resetGuard();
    this.pending = 0;
  }

  /**
   * Queue one optimizer step on these rows (at most batchSize·gradAccum), in micro-batches of batchSize rows, each row
   * weighing its weight over the step's total. Nothing is read back; the loss goes to the history ring (readLosses).
   */
  step(
    tokens: readonly (readonly number[])[],
    targets: readonly number[],
    weights: readonly number[] | undefined,
    step: number,
    lr: number,
  ): void {
    if (this.pending === HISTORY) throw new HlmError('read the loss history before queueing more steps');
    const B = this.opts.batchSize;
    const n = tokens.length;
    if (n < 1 || n > B * this.gradAccum)
      throw new HlmError(`a step takes 1..${B * this.gradAccum} rows (batch size × grad-accum), got ${n}`);
    const weightTotal = weights ? weights.reduce((a, w) => a + w, 0) : n;
    this.update.optimizer.setStep(step, lr);
    for (let r0 = 0; r0 < n; r0 += B) {
      const rows = tokens.slice(r0, r0 + B);
      const b = this.bucketFor(Math.max(...rows.map((t) => t.length)));
      this.write(b, rows);
      b.head.setBatch({
        lengths: rows.map((t) => t.length),
        targets: targets.slice(r0, r0 + B),
        weights: weights?.slice(r0, r0 + B),
        weightTotal,
      });
      const first: Command[] =
        r0 === 0 ? [{ clear: this.buckets[this.buckets.length - 1].model.grads! }, { clear: this.loss }] : [];
      const last: Command[] =
        r0 + B >= n
          ? [
              ...this.update.commands(this.loss),
              { copy: { from: this.loss, fromOffset: 0, to: this.history, toOffset: this.pending * 4, size: 4 } },
            ]
          : [];
      this.gpu.submit([...first, ...b.pass, ...last], `finetune step ${step}${n > B ? ` rows ${r0}..` : ''}`);
    }
    this.pending++;
  }

  /** The losses of the steps queued since the last call (waits for the GPU). */
  async readLosses(): Promise<Float32Array> {
    const n = this.pending;
    this.pending = 0;
    return n ? this.gpu.readF32(this.history, 0, n) : new Float32Array(0);
  }

  /** Logits [rows, C] for every input, in order (forward only). */
  async predict(tokens: readonly (readonly number[])[]): Promise<Float32Array> {
    const C = this.config.num_labels;
    const B = this.opts.batchSize;
    const out = new Float32Array(tokens.length * C);
    // Similar lengths together: fewer padded positions per batch.
    const order = tokens.map((t, i) => i).sort((i, j) => tokens[i].length - tokens[j].length);
    for (let s = 0; s < order.length; s += B) {
      const rows = order.slice(s, s + B);
      const batch = rows.map((i) => tokens[i]);
      const b = this.bucketFor(Math.max(...batch.map((t) => t.length)));
      this.write(b, batch);
      b.head.setBatch({ lengths: batch.map((t) => t.length), targets: batch.map(() => 0) });
      await this.gpu.run([...b.model.forward, ...b.head.eval], 'predict');
      const z = await this.gpu.readF32(b.head.logits, 0, rows.length * C);
      rows.forEach((i, r) => out.set(z.subarray(r * C, (r + 1) * C), i * C));
    }
    return out;
  }

  readParams(): Promise<Float32Array> {
    return this.buckets[0].model.readParams();
  }

  /** Right-pad each row to the bucket's T (the padding id is irrelevant: those keys are hidden and never pooled). */
  private write(b: Bucket, rows: readonly (readonly number[])[]): void {
    const { T, model } = b;
    const ids = new Uint32Array(model.N);
    rows.forEach((r, i) => ids.set(r, i * T));
    model.setTokens(ids);
  }

  destroy(): void {
    this.update.destroy();
    this.gpu.free(this.history, this.loss, this.guard);
    for (const b of this.buckets) b.head.destroy();
    for (const b of [...this.buckets].reverse()) b.model.destroy();
  }
}
