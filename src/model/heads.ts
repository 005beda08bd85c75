// Training heads: what turns the final hidden states `hf` into a loss and the gradient `dhf`
// the backward starts from. The trainer only sees this interface, so objectives stay swappable.
//   ce:  vanilla LM head, logits = hf·wteᵀ over the whole vocabulary (tied), softmax cross-entropy.
import type { Command, Dispatch } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { crossEntropyHead, lossMean } from '../kernels/crossentropy.js';
import type { Gpt2 } from './gpt2.js';

export interface Head {
  /** Loss and gradients into dhf and the parameters (after model.forward, before model.backward). */
  readonly train: Command[];
  /** Loss only. */
  readonly eval: Command[];
  /** f32 buffer whose element 0 is the micro-batch's mean loss after train or eval. */
  readonly loss: GPUBuffer;
  /** Targets for the current micro-batch, row-major [B·T]; −1 ignores a position. Returns how many count. */
  setTargets(targets: ArrayLike<number>): number;
  destroy(): void;
}

export async function createCeHead(model: Gpt2): Promise<Head> {
  const { gpu, N } = model;
  const { vocab_size: V, n_embd: d } = model.config;
  const targets = gpu.buffer('targets', N * 4);
  const losses = gpu.buffer('row losses', N * 4);
  // [0] mean loss, [1] loss scale = 1 / counted targets
  const scalars = gpu.buffer('loss scalars', 16);
  const wte = model.P('transformer.wte.weight');
  const lossScale = { buffer: scalars, offset: 1 };
  const common = { N, V, d, h: { buffer: model.hf }, wte, targets: { buffer: targets }, losses: { buffer: losses }, lossScale };
  const mean = await lossMean(gpu, { N, losses: { buffer: losses }, lossScale, out: { buffer: scalars } });
  const dispatches: Dispatch[] = [mean];
  let trainCmds: Command[] = [];
  let scratch: GPUBuffer | undefined;
  if (model.dhf) {
    const t = await crossEntropyHead(gpu, { ...common, dh: { buffer: model.dhf }, dwte: model.G('transformer.wte.weight'), label: 'ce head' });
    scratch = t.scratch;
    dispatches.push(...t.dispatches);
    trainCmds = [...t.dispatches, mean];
  }
  const e = await crossEntropyHead(gpu, { ...common, scratch, label: 'ce head (eval)' });
  dispatches.push(...e.dispatches);
  const scale = new Float32Array(1);
  return {
    train: trainCmds,
    eval: [...e.dispatches, mean],
    loss: scalars,
    setTargets(t: ArrayLike<number>): number {
      if (t.length !== N) throw new HlmError(`expected ${N} targets, got ${t.length}`);
      const buf = new Int32Array(N);
      let count = 0;
      for (let i = 0; i < N; i++) {
        const v = t[i];
        if (!(Number.isInteger(v) && v >= -1 && v < V)) throw new HlmError(`target ${v} at position ${i} is outside the vocabulary (0..${V - 1}, or -1 to ignore)`);
        buf[i] = v;
        if (v >= 0) count++;
      }
      gpu.write(targets, buf);
      scale[0] = count ? 1 / count : 0;
      gpu.write(scalars, scale, 4);
      return count;
    },
    destroy(): void {
      gpu.release(...dispatches);
      gpu.free(targets, losses, scalars);
    },
  };
}
