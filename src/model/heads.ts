// Training heads: what turns the final hidden states `hf` into a loss and the gradient `dhf`
// the backward starts from. The trainer only sees this interface, so objectives stay swappable.
//   ce:  vanilla LM head, logits = hf·wteᵀ over the whole vocabulary (tied), softmax cross-entropy.
//   cwt: headless, Contrastive Weight Tying: the K target positions' hidden states o_k are scored
//        against the input embeddings e_j = wte[t_j] of the micro-batch's K target tokens;
//        loss = mean_k[−s_kk + logsumexp_j s_kj], s = o·eᵀ/τ, duplicates kept, gradients into
//        both o and (scatter-added, deterministically) the embedding rows.
//        It is the CE head's computation with the gathered target embeddings as a K-row
//        "vocabulary" and target k = k, so the same kernels serve: K×K scores in tiles folded
//        into online softmax states (or, on a software adapter, a matmul's), stored a row
//        chunk at a time for the backward (and, after a matmul, for the row pass).
// Mixed precision (a model with precision f16): both heads round the hidden states (and the CWT
// head its gathered target embeddings) to f16 and read the output weight's f16 copy; scores,
// softmax, losses and gradients stay f32. With loss scaling the gradients are multiplied by the
// scale the update keeps on the GPU (`gradScale`); the losses are not.
import type { Command, Dispatch } from '../gpu/device.js';
import type { GpuScope } from '../gpu/scope.js';
import { HlmError } from '../errors.js';
import { castF16 } from '../kernels/cast.js';
import { crossEntropyHead, lossMean } from '../kernels/crossentropy.js';
import { createEmbeddingIndex, scatterAddRows, writeEmbeddingIndex } from '../kernels/embedding.js';
import { gatherRows, scatterRows } from '../kernels/rows.js';
import type { TensorRef } from '../kernels/types.js';
import { half, halfBytes } from './block.js';
import { embeddingIndexBuffers, type Gpt2 } from './gpt2.js';

export interface Head {
  /**
   * Loss and gradients into dhf and the parameters (after model.forward, before model.backward). Adds the micro-batch's
   * share of the loss to loss[0]: with gradient accumulation the step's loss builds up there (clear it first).
   */
  readonly train: Command[];
  /** Loss only: loss[0] = the micro-batch's mean loss. */
  readonly eval: Command[];
  /** f32 buffer: element 0 the loss, element 1 the loss scale. */
  readonly loss: GPUBuffer;
  /**
   * Targets for the current micro-batch, row-major [B·T]; −1 ignores a position. Returns how many count. The loss and
   * its gradient are scaled by 1 / `total` (default: this micro-batch's count): with gradient accumulation, the
   * targets of all the step's micro-batches, so that their sum is the mean over the step.
   */
  setTargets(targets: ArrayLike<number>, total?: number): number;
  destroy(): void;
}

/** The scale 1 / total targets (0 when there are none), checked against the micro-batch's own count. */
function scaleFor(count: number, total: number | undefined): number {
  const t = total ?? count;
  if (!(Number.isInteger(t) && t >= count))
    throw new HlmError(`the loss total ${t} is below this micro-batch's ${count}`);
  return t ? 1 / t : 0;
}

/** Target i of t, checked: a token id below V, or −1 (ignored). */
function targetAt(t: ArrayLike<number>, i: number, V: number): number {
  const v = t[i];
  if (!(Number.isInteger(v) && v >= -1 && v < V))
    throw new HlmError(`target ${v} at position ${i} is outside the vocabulary (0..${V - 1}, or -1 to ignore)`);
  return v;
}

/**
 * What the CE kernels read as the hidden states: `H` itself, or (mixed precision) an f16 copy the returned cast fills.
 */
async function halfOf(model: Gpt2, scope: GpuScope, H: GPUBuffer, n: number, what: string) {
  if (model.precision !== 'f16') return { ref: { buffer: H } as TensorRef, cast: [] as Dispatch[] };
  const copy = scope.buffer(`${what} (f16)`, halfBytes(n));
  const cast = await castF16(model.gpu, { n, src: { buffer: H }, dst: half(copy), label: `${what} to f16` });
  return { ref: half(copy), cast: [scope.keep(cast)] };
}

/** `move` (gatherRows or scatterRows) of K rows from src to dst at the rows positions names, kept by the scope. */
async function moveRows(
  move: typeof gatherRows,
  model: Gpt2,
  scope: GpuScope,
  K: number,
  src: TensorRef,
  positions: GPUBuffer,
  dst: GPUBuffer,
  label: string,
): Promise<Dispatch> {
  const spec = { n: K, d: model.config.n_embd, src, index: { buffer: positions }, dst: { buffer: dst }, label };
  return scope.keep(await move(model.gpu, spec));
}

export interface CeOptions {
  /** Build only the loss (no gradients). */
  evalOnly?: boolean;
  /** Logits rows per chunk (default: as many as fit the scratch budget). */
  chunkRows?: number;
  /**
   * Score only this many positions per micro-batch (an encoder's masked ones): their hidden
   * states are gathered first, so the V-wide head costs K rows instead of B·T. Default B·T.
   */
  rows?: number;
  /** Loss scaling: f32 scalar on the GPU multiplying every gradient (not the loss). */
  gradScale?: TensorRef;
}

export async function createCeHead(model: Gpt2, opts: CeOptions = {}): Promise<Head> {
  const { gpu, N } = model;
  const { vocab_size: V, n_embd: d } = model.config;
  const K = opts.rows ?? N;
  if (!(Number.isInteger(K) && K >= 1 && K <= N)) throw new HlmError(`CE head: ${K} scored rows must be in 1..${N}`);
  const gathered = K < N;
  const scope = model.scope.scope(opts.evalOnly ? 'ce eval head' : 'ce head');
  const targets = scope.buffer('targets', K * 4);
  const losses = scope.buffer('row losses', K * 4);
  // [0] mean loss, [1] loss scale = 1 / counted targets
  const scalars = scope.buffer('loss scalars', 16);
  const positions = gathered ? scope.buffer('scored positions', K * 4) : undefined;
  const H = gathered ? scope.buffer('scored hidden states', K * d * 4) : model.hf;
  // Tied: the input embeddings are the output layer; untied (after head fine-tuning): lm_head.
  const wte = model.precision === 'f16' ? model.outputHalf() : model.output();
  const lossScale = { buffer: scalars, offset: 1 };
  const h16 = await halfOf(model, scope, H, K * d, 'ce hidden states');
  const common = {
    N: K,
    V,
    d,
    h: h16.ref,
    wte,
    targets: { buffer: targets },
    losses: { buffer: losses },
    lossScale,
    chunkRows: opts.chunkRows,
  };
  const meanOf = async (accumulate: boolean) =>
    scope.keep(
      await lossMean(gpu, { N: K, losses: { buffer: losses }, lossScale, out: { buffer: scalars }, accumulate }),
    );
  const mean = await meanOf(false);
  const hf = { buffer: model.hf };
  const gather = positions
    ? [await moveRows(gatherRows, model, scope, K, hf, positions, H, 'ce gather scored hidden states')]
    : [];
  let trainCmds: Command[] = [];
  if (model.dhf && !opts.evalOnly) {
    const dH = gathered ? scope.buffer('scored dH', K * d * 4) : model.dhf;
    const t = await crossEntropyHead(gpu, {
      ...common,
      dh: { buffer: dH },
      dwte: model.outputGrad(),
      gradScale: opts.gradScale,
      label: 'ce head',
    });
    scope.keep(t.dispatches);
    const dh = { buffer: dH };
    const scatter: Command[] = positions
      ? [{ clear: model.dhf }, await moveRows(scatterRows, model, scope, K, dh, positions, model.dhf, 'ce scatter dH')]
      : [];
    trainCmds = [...gather, ...h16.cast, ...t.dispatches, await meanOf(true), ...scatter];
  }
  const e = await crossEntropyHead(gpu, { ...common, label: 'ce head (eval)' });
  scope.keep(e.dispatches);
  const scale = new Float32Array(1);
  return {
    train: trainCmds,
    eval: [...gather, ...h16.cast, ...e.dispatches, mean],
    loss: scalars,
    setTargets(t: ArrayLike<number>, total?: number): number {
      if (t.length !== N) throw new HlmError(`expected ${N} targets, got ${t.length}`);
      const tk = new Int32Array(K).fill(-1);
      const pos = new Uint32Array(K);
      let count = 0;
      for (let i = 0; i < N; i++) {
        const v = targetAt(t, i, V);
        if (!gathered) tk[i] = v;
        else if (v >= 0) {
          if (count === K)
            throw new HlmError(`the CE head scores ${K} positions per micro-batch; this one has more targets`);
          tk[count] = v;
          pos[count] = i;
        }
        if (v >= 0) count++;
      }
      if (gathered) {
        // Unused rows point at distinct ignored positions: their gradient is zero, and the
        // scatter back stays one writer per row.
        let k = count;
        for (let i = 0; i < N && k < K; i++) if (t[i] < 0) pos[k++] = i;
        gpu.write(positions!, pos);
      }
      gpu.write(targets, tk);
      scale[0] = scaleFor(count, total);
      gpu.write(scalars, scale, 4);
      return count;
    },
    destroy: () => scope.release(),
  };
}

export interface CwtOptions {
  /** Target positions per micro-batch: B·T for a decoder, the masked-LM count for an encoder. */
  K: number;
  temperature: number;
  /** Loss scaling: f32 scalar on the GPU multiplying every gradient (not the loss). */
  gradScale?: TensorRef;
}

export async function createCwtHead(model: Gpt2, o: CwtOptions): Promise<Head> {
  const { gpu, N } = model;
  const { vocab_size: V, n_embd: d } = model.config;
  const { K } = o;
  if (!(Number.isInteger(K) && K >= 1 && K <= N))
    throw new HlmError(`CWT head: K = ${K} target positions must be in 1..${N}`);
  if (!(o.temperature > 0)) throw new HlmError(`--cwt-temperature must be positive, got ${o.temperature}`);
  const all = K === N; // decoder: every position is a target, in order; no gather of hidden states
  const scope = model.scope.scope('cwt head');
  const tokens = scope.buffer('cwt target tokens', K * 4); // u32 t_k
  const positions = scope.buffer('cwt target positions', K * 4); // u32 row of hf for k
  const diagonal = scope.buffer('cwt diagonal targets', K * 4); // i32 k: the positive of row k
  gpu.write(
    diagonal,
    Int32Array.from({ length: K }, (_, k) => k),
  );
  const E = scope.buffer('cwt target embeddings', K * d * 4);
  const H = all ? model.hf : scope.buffer('cwt target hidden', K * d * 4);
  const losses = scope.buffer('cwt row losses', K * 4);
  const scalars = scope.buffer('cwt loss scalars', 16);
  const scaleRef = { buffer: scalars, offset: 1 };
  const wte = model.P('transformer.wte.weight');
  const h16 = await halfOf(model, scope, H, K * d, 'cwt target hidden');
  const e16 = await halfOf(model, scope, E, K * d, 'cwt target embeddings');
  const common = {
    N: K,
    V: K,
    d,
    logitScale: 1 / o.temperature,
    h: h16.ref,
    wte: e16.ref,
    targets: { buffer: diagonal },
    losses: { buffer: losses },
    lossScale: scaleRef,
  };
  const gathers = [await moveRows(gatherRows, model, scope, K, wte, tokens, E, 'cwt gather target embeddings')];
  if (!all)
    gathers.push(
      await moveRows(
        gatherRows,
        model,
        scope,
        K,
        { buffer: model.hf },
        positions,
        H,
        'cwt gather target hidden states',
      ),
    );
  gathers.push(...h16.cast, ...e16.cast);
  const meanOf = async (accumulate: boolean) =>
    scope.keep(
      await lossMean(gpu, {
        N: K,
        losses: { buffer: losses },
        lossScale: scaleRef,
        out: { buffer: scalars },
        accumulate,
        label: 'cwt loss mean',
      }),
    );
  const mean = await meanOf(false);

  let train: Command[] = [];
  let index: ReturnType<typeof createEmbeddingIndex> | undefined;
  if (model.dhf) {
    const dE = scope.buffer('cwt dE', K * d * 4);
    const dH = all ? model.dhf : scope.buffer('cwt dH', K * d * 4);
    index = createEmbeddingIndex(gpu, K, 'cwt target index');
    scope.adopt(...embeddingIndexBuffers(index));
    const t = await crossEntropyHead(gpu, {
      ...common,
      dh: { buffer: dH },
      dwte: { buffer: dE },
      gradScale: o.gradScale,
      label: 'cwt scores',
    });
    scope.keep(t.dispatches);
    const dh = { buffer: dH };
    const scatter: Command[] = all
      ? []
      : [
          { clear: model.dhf },
          await moveRows(scatterRows, model, scope, K, dh, positions, model.dhf, 'cwt scatter dH'),
        ];
    scatter.push(
      scope.keep(
        await scatterAddRows(gpu, {
          n: K,
          d,
          src: { buffer: dE },
          index,
          dst: model.G('transformer.wte.weight'),
          label: 'cwt scatter-add dE into dwte',
        }),
      ),
    );
    train = [...gathers, { clear: dE }, ...t.dispatches, await meanOf(true), ...scatter];
  }
  const e = await crossEntropyHead(gpu, { ...common, label: 'cwt scores (eval)' });
  scope.keep(e.dispatches);
  return {
    train,
    eval: [...gathers, ...e.dispatches, mean],
    loss: scalars,
    setTargets(t: ArrayLike<number>, total?: number): number {
      if (t.length !== N) throw new HlmError(`expected ${N} targets, got ${t.length}`);
      const tok = new Uint32Array(K);
      const pos = new Uint32Array(K);
      let k = 0;
      for (let i = 0; i < N; i++) {
        const v = targetAt(t, i, V);
        if (v < 0) continue;
        if (k === K)
          throw new HlmError(`the CWT head was built for ${K} target positions per micro-batch; this one has more`);
        tok[k] = v;
        pos[k++] = i;
      }
      if (k !== K)
        throw new HlmError(`the CWT head was built for ${K} target positions per micro-batch; this one has ${k}`);
      gpu.write(tokens, tok);
      gpu.write(positions, pos);
      gpu.write(scalars, Float32Array.of(scaleFor(K, total)), 4);
      if (index) writeEmbeddingIndex(gpu, index, tok, V);
      return K;
    },
    destroy: () => scope.release(),
  };
}
