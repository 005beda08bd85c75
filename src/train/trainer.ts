// One training step: clear gradients, forward, head (loss and its gradient), backward, gradient
// norm and clipping scale, the step guard (which skips the update on the GPU when the loss or the
// norm is not finite, see update.ts), optimizer, and a copy of the step's loss and gradient norm
// into a small history ring. One command encoder per micro-batch: with gradient accumulation the
// micro-batches' forward, head and backward add their gradients (and loss shares) into the same
// buffers, and the last one is followed by the clip, the guard and the update. Nothing is read
// back per step: the ring is read when metrics are printed (every logEvery steps).
// Mixed precision (`precision: 'f16'`, src/model/gpt2.ts) usually comes with loss scaling: the heads
// multiply their gradients by the scale in the step guard's buffer, the clip divides it out, and
// the guard skips a step whose gradients overflowed (and halves a dynamic scale). The ring keeps
// each step's scale and whether its update was skipped.
import type { Command, Gpu } from '../gpu/device.js';
import type { GpuScope } from '../gpu/scope.js';
import { HlmError } from '../errors.js';
import type { ModelConfig } from '../model/config.js';
import { Gpt2, type Precision } from '../model/gpt2.js';
import { GUARD_BYTES, GUARD_SCALE, type LossScaleState } from '../kernels/step-guard.js';
import { createCeHead, createCwtHead, type Head } from '../model/heads.js';
import { mlmCount } from '../data/mlm.js';
import { createUpdate, type Update, type UpdateOptions } from './update.js';

export interface TrainerOptions extends UpdateOptions {
  /** Rows and positions of a micro-batch. */
  B: number;
  T: number;
  /** Micro-batches per optimizer step (default 1). */
  gradAccum?: number;
  /** Steps whose loss the history ring holds between readbacks. */
  historySize: number;
  /** CWT only: score temperature (default 1). */
  cwtTemperature?: number;
  /** The products' operands (default f32); f16 is mixed precision. */
  precision?: Precision;
}

export interface StepRecord {
  loss: number;
  /** The true (unscaled) gradient norm; not finite when the update was skipped. */
  gradNorm: number;
  /** With loss scaling: the scale this step's gradients were computed with, and whether its update was skipped. */
  lossScale?: number;
  skipped?: boolean;
}

/** Bytes of a history slot: f32 loss, f32 gradient norm, f32 loss scale, u32 skipped. */
const SLOT = 16;

/** One micro-batch: inputs and targets, row-major [B·T] each. */
export interface MicroBatch {
  inputs: ArrayLike<number>;
  targets: ArrayLike<number>;
}

export class Trainer {
  /** The first micro-batch's commands (clearing gradients and the loss), any other's, and the update's. */
  private first: Command[] = [];
  private next: Command[] = [];

  private constructor(
    readonly gpu: Gpu,
    /** Owns the model, and through it the heads and the update. */
    private readonly scope: GpuScope,
    readonly model: Gpt2,
    readonly head: Head,
    /** Tied-embedding cross-entropy for evaluating a CWT decoder on the CE scale (eval only). */
    readonly ceEval: Head | undefined,
    readonly opts: TrainerOptions,
    private readonly update: Update,
    private readonly history: GPUBuffer, // [historySize][loss, norm, scale, skipped]
  ) {}

  get m(): GPUBuffer | undefined {
    return this.update.m;
  }
  get v(): GPUBuffer | undefined {
    return this.update.v;
  }

  static async create(gpu: Gpu, config: ModelConfig, opts: TrainerOptions): Promise<Trainer> {
    const scope = gpu.scope('trainer');
    try {
      return await Trainer.build(gpu, scope, config, opts);
    } catch (e) {
      scope.release();
      throw e;
    }
  }

  private static async build(gpu: Gpu, scope: GpuScope, config: ModelConfig, opts: TrainerOptions): Promise<Trainer> {
    const accum = opts.gradAccum ?? 1;
    if (!(Number.isInteger(accum) && accum >= 1))
      throw new HlmError(`gradient accumulation must be a positive integer, got ${accum}`);
    const model = await Gpt2.create(gpu, config, {
      B: opts.B,
      T: opts.T,
      train: true,
      scope,
      precision: opts.precision,
    });
    // The step guard's buffer holds the loss scale the heads read: allocated before them.
    const guard = scope.buffer('step guard', GUARD_BYTES);
    const gradScale = opts.lossScaling ? { buffer: guard, offset: GUARD_SCALE } : undefined;
    // A decoder predicts every position; an encoder the masked ones (a fixed count per batch).
    const K = config.causal ? model.N : mlmCount(model.N);
    const head =
      config.objective === 'cwt'
        ? await createCwtHead(model, { K, temperature: opts.cwtTemperature ?? 1, gradScale })
        : await createCeHead(model, { rows: K, gradScale });
    // Forward only: the fused head stores no logits, so the headless run carries no V-sized buffer.
    const ceEval =
      config.objective === 'cwt' && config.causal ? await createCeHead(model, { evalOnly: true }) : undefined;
    const update = await createUpdate(gpu, model, opts, guard);
    const history = scope.buffer('loss history', opts.historySize * SLOT);
    const t = new Trainer(gpu, scope, model, head, ceEval, opts, update, history);
    const pass = [...model.forward, ...head.train, ...model.backward];
    t.first = [{ clear: model.grads! }, { clear: head.loss, offset: 0, size: 4 }, ...pass];
    t.next = pass;
    return t;
  }

  get gradAccum(): number {
    return this.opts.gradAccum ?? 1;
  }

  /**
   * Queue one step over gradAccum micro-batches (nothing is waited for or read back). Each target of the step weighs
   * the same: the loss is the mean over all the step's targets. `slot` picks the history entry.
   */
  step(micro: readonly MicroBatch[], step: number, lr: number, slot: number): void {
    if (!(slot >= 0 && slot < this.opts.historySize)) throw new HlmError(`history slot ${slot} out of range`);
    if (micro.length !== this.gradAccum)
      throw new HlmError(`step ${step}: ${micro.length} micro-batches, the trainer accumulates ${this.gradAccum}`);
    let total = 0;
    for (const m of micro) for (let i = 0; i < m.targets.length; i++) if (m.targets[i] >= 0) total++;
    if (total === 0) throw new HlmError(`step ${step}: the batch has no target to predict`);
    this.update.optimizer.setStep(step, lr);
    micro.forEach((m, i) => {
      this.model.setTokens(m.inputs);
      this.head.setTargets(m.targets, total);
      const last = i === micro.length - 1;
      this.gpu.submit(
        [...(i === 0 ? this.first : this.next), ...(last ? this.finish(slot) : [])],
        micro.length > 1 ? `train step ${step} micro-batch ${i + 1}` : `train step ${step}`,
      );
    });
  }

  /** The update after the last micro-batch, and the copies of what the history keeps of the step. */
  private finish(slot: number): Command[] {
    const at = slot * SLOT;
    const { guard, scalars } = this.update;
    const keep = (from: GPUBuffer, fromOffset: number, toOffset: number): Command => ({
      copy: { from, fromOffset, to: this.history, toOffset: at + toOffset, size: 4 },
    });
    return [
      // The scale the step's gradients were computed with, before the guard changes it.
      keep(guard, GUARD_SCALE * 4, 8),
      ...this.update.commands(this.head.loss),
      keep(this.head.loss, 0, 0),
      keep(scalars, 4, 4),
      keep(guard, 0, 12),
    ];
  }

  /** The loss and gradient norm (and loss scaling) of the last `count` history slots (waits for the GPU). */
  async readHistory(count: number): Promise<StepRecord[]> {
    const h = await this.gpu.readF32(this.history, 0, count * 4);
    const skipped = new Uint32Array(h.buffer, h.byteOffset, h.length);
    const scaling = Boolean(this.opts.lossScaling);
    return Array.from({ length: count }, (_, i) => ({
      loss: h[4 * i],
      gradNorm: h[4 * i + 1],
      ...(scaling ? { lossScale: h[4 * i + 2], skipped: skipped[4 * i + 3] !== 0 } : {}),
    }));
  }

  /** With loss scaling: its state (checkpoints keep it); undefined without. */
  readLossScale(): Promise<LossScaleState | undefined> {
    return this.update.readLossScale();
  }

  /** With loss scaling: restore its state (resume). */
  writeLossScale(state: LossScaleState): void {
    this.update.writeLossScale(state);
  }

  /**
   * The loss and gradient norm the next step would see on this batch, with nothing updated (weights, moments and
   * the step guard stay as they are; gradients and activations are scratch). A checkpoint is written only when this
   * is finite for the batch after it, so that a saved checkpoint never leads straight into a non-finite step.
   */
  async probe(inputs: ArrayLike<number>, targets: ArrayLike<number>): Promise<StepRecord> {
    this.model.setTokens(inputs);
    if (this.head.setTargets(targets) === 0) throw new HlmError('the probe batch has no target to predict');
    const m = this.model;
    await this.gpu.run([{ clear: m.grads! }, ...m.forward, ...this.head.train, ...m.backward, ...this.update.norm]);
    const [loss] = await this.gpu.readF32(this.head.loss, 0, 1);
    const [gradNorm] = await this.gpu.readF32(this.update.scalars, 1, 1);
    return { loss, gradNorm };
  }

  /** Steps whose update the guard skipped (reads one number back). */
  async skippedSteps(): Promise<number> {
    return (await this.gpu.read(this.update.guard, Uint32Array, 1, 1))[0];
  }

  /** Mean loss over evaluation batches (forward only): the objective's, and the tied CE of a CWT decoder. */
  async evaluate(
    batches: Iterable<{ inputs: ArrayLike<number>; targets: ArrayLike<number> }>,
  ): Promise<{ loss: number; ce: number | null }> {
    let sum = 0;
    let weight = 0;
    let ceSum = 0;
    for (const b of batches) {
      this.model.setTokens(b.inputs);
      const count = this.head.setTargets(b.targets);
      if (!count) continue;
      this.ceEval?.setTargets(b.targets);
      await this.gpu.run([...this.model.forward, ...this.head.eval, ...(this.ceEval?.eval ?? [])], 'eval');
      sum += (await this.gpu.readF32(this.head.loss, 0, 1))[0] * count;
      if (this.ceEval) ceSum += (await this.gpu.readF32(this.ceEval.loss, 0, 1))[0] * count;
      weight += count;
    }
    if (!weight) throw new HlmError('the evaluation data has no target to predict');
    return {
      loss: sum / weight,
      ce: this.ceEval ? ceSum / weight : this.model.config.objective === 'ce' ? sum / weight : null,
    };
  }

  async readState(): Promise<{ params: Float32Array; m?: Float32Array; v?: Float32Array }> {
    const n = this.model.layout.total;
    return {
      params: await this.model.readParams(),
      m: this.m ? await this.gpu.readF32(this.m, 0, n) : undefined,
      v: this.v ? await this.gpu.readF32(this.v, 0, n) : undefined,
    };
  }

  writeState(params: Float32Array, moments?: { m: Float32Array; v: Float32Array }): void {
    this.model.writeParams(params);
    if (moments && this.m && this.v) {
      this.gpu.write(this.m, moments.m);
      this.gpu.write(this.v, moments.v);
    }
  }

  /** Free the model, its heads, the optimizer state and the history. */
  destroy(): void {
    this.scope.release();
  }
}
