// C = alpha·op(A)·op(B) + beta·C, batched with strides, optionally followed by a bias, a residual add and
// GELU in the same dispatch (the epilogue). The building block of every linear layer (forward: x·W + b;
// backward: dY·Wᵀ and xᵀ·dY) and of attention's score and value products.
//
// Two kernels, chosen by adapter class:
//   matmul.wgsl            workgroup tiles staged in workgroup memory, a register block per invocation, split K
//                          when the output has few tiles: hardware GPUs (and explicit tiles anywhere)
//   matmul_registers.wgsl  no workgroup memory or barriers, a 16x16 register block per invocation, operands
//                          read from textures where they can be copied there: software adapters (llvmpipe)
// A and B may be packed f16 (dtype 'f16', the mixed-precision copies): both kernels read them from storage and unpack
// them to f32 as they load; products, sums, C and the epilogue's tensors stay f32.
import type { Binding, Dispatch, Gpu, TextureUpload } from '../gpu/device.js';
import { HlmError } from '../errors.js';
import { epilogueBindings } from './matmul-epilogue.js';
import { subgroupMatmulUsable, subgroupProduct, type SubgroupProductSpec } from './matmul-subgroup.js';
import { checkSizes, elementGrid, isF16, off, offAny, type TensorRef } from './types.js';

export interface MatmulTile {
  BM: number;
  BN: number;
  BK: number;
  TM: number;
  TN: number;
}

/** Large tiles for hardware GPUs; on llvmpipe 64x64 gave 7.8 GFLOP/s at 512³ and more workgroups for small products. */
export const TILES: Record<'hardware' | 'software', MatmulTile> = {
  hardware: { BM: 128, BN: 128, BK: 16, TM: 8, TN: 8 },
  software: { BM: 64, BN: 64, BK: 8, TM: 8, TN: 8 },
};

export interface MatmulSpec {
  M: number;
  N: number;
  K: number;
  batch?: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  /** A and B may be f16 (offsets and strides then in halves); C and the epilogue's tensors are f32. */
  a: TensorRef;
  b: TensorRef;
  c: TensorRef;
  /**
   * Elements between consecutive stored rows of A (of B); default: the row's length (K, or M with transA). Rows may be
   * padded past it (the CE head pads its logits to a multiple of 64, so that the register kernel can read them as
   * vec4s and from a texture); the padding never counts, whatever it holds.
   */
  ldA?: number;
  ldB?: number;
  /**
   * Elements between consecutive rows of C (and of the residual and GELU output, laid out like C); default N. The CE
   * head writes its logits into rows padded to a multiple of 64 this way.
   */
  ldC?: number;
  /** Elements between consecutive batch items; default: packed (M·ldA, K·ldB, M·ldC). 0 broadcasts. */
  strideA?: number;
  strideB?: number;
  strideC?: number;
  tile?: MatmulTile;
  /** Split K into this many parts summed by a second dispatch (default: defaultPlan's, 1 with an explicit tile). */
  splitK?: number;
  /**
   * Which kernel (default: with two f16 operands on a device whose f16 kernels are subgroup-matrix, that one; else
   * the register kernel on a software adapter when the operands allow it and no tile or split is named; else the
   * tiled one). 'registers' refuses operands it cannot read, 'subgroup-matrix' anything but two f16 operands on such
   * a device.
   */
  kernel?: 'tiled' | 'registers' | 'subgroup-matrix';
  /** Epilogue: a row vector [N] added to every row of the result (a linear layer's bias). */
  bias?: TensorRef;
  /** Epilogue: a tensor laid out like C (from its own offset) added to the result; not in C's buffer. */
  residual?: TensorRef;
  /** Epilogue: GELU (tanh approximation) of the result written here, laid out like C; C keeps the pre-activation. */
  gelu?: TensorRef;
  label?: string;
}

export function matmulFlops(s: Pick<MatmulSpec, 'M' | 'N' | 'K' | 'batch'>): number {
  return 2 * s.M * s.N * s.K * (s.batch ?? 1);
}

function checkTile(t: MatmulTile): void {
  const ok = t.BM % t.TM === 0 && t.BN % t.TN === 0 && [4, 8].includes(t.TM) && [4, 8].includes(t.TN) && t.BK % 4 === 0;
  if (!ok)
    throw new HlmError(
      `matmul tile ${JSON.stringify(t)}: BM/TM and BN/TN must divide, TM and TN be 4 or 8, and BK a multiple of 4`,
    );
}

/**
 * On a hardware GPU a product whose output has few 128×128 tiles (the weight gradients:
 * d_in × d_out outputs, K = all tokens; the CE head's dh, K = V) leaves most of the GPU idle:
 * on an H200, c_fc's dW (512×2048, K = 8,192) ran at ~7 TFLOP/s in 64×64 tiles against
 * ~23 for the head's big products. Below FEW_TILES large tiles, K is split into parts that
 * run side by side (aiming at SPLIT_K_GROUPS workgroups, each part at least SPLIT_K_MIN_SPAN
 * long) and a second dispatch sums them; when K is too short to split, 64×64 tiles give 4×
 * the workgroups instead. 264 is twice an H100's or H200's 132 multiprocessors.
 */
export const FEW_TILES = 264;
export const SPLIT_K_GROUPS = 528;
export const SPLIT_K_MIN_SPAN = 512;
export const SPLIT_K_MAX_PARTS = 16;
export const SMALL_HARDWARE_TILE: MatmulTile = { BM: 64, BN: 64, BK: 16, TM: 8, TN: 8 };

/** The tiled kernel's tile and number of K parts for a product when the caller names neither. */
export function defaultPlan(
  kind: 'hardware' | 'software',
  M: number,
  N: number,
  K: number,
  batch: number,
): { tile: MatmulTile; parts: number } {
  const big = TILES[kind];
  const groups = Math.ceil(M / big.BM) * Math.ceil(N / big.BN) * batch;
  if (kind === 'software' || groups >= FEW_TILES) return { tile: big, parts: 1 };
  const parts = Math.min(SPLIT_K_MAX_PARTS, Math.ceil(SPLIT_K_GROUPS / groups), Math.floor(K / SPLIT_K_MIN_SPAN));
  return parts >= 2 ? { tile: big, parts } : { tile: SMALL_HARDWARE_TILE, parts: 1 };
}

/**
 * Most K one dispatch of the tiled kernel covers on a software adapter: llvmpipe silently stops an invocation
 * after 65,535 loop iterations (Mesa's loop limiter), which a long K loop reaches; longer products are split over
 * several dispatches that accumulate (beta = 1 after the first).
 */
export const SOFTWARE_K_SPAN = 8192;

/**
 * The register kernel's K span: its loop takes 4 values of k an iteration, and a texture holding a K-major
 * operand (TRANS_A's A, plain B) has a row per k, within llvmpipe's 16,384.
 */
export const REGISTER_K_SPAN = 16384;

/** The register kernel's shape: each invocation an RM x RN block of C, a workgroup WX x WY invocations. */
export interface RegisterBlock {
  RM: number;
  RN: number;
  WX: number;
  WY: number;
}

/**
 * Blocks of 16 x 16 (the fastest on llvmpipe, which runs 8 invocations along x in SIMD lanes), narrower where that
 * leaves fewer SIMD lanes idle: lanes past N compute nothing useful, and with d = 64 columns (the CE head's dh and
 * dwte) 16-wide blocks left half of them idle (8 wide: 0.35× the CPU time for dh's 256×64×16,384 slice); 192 columns
 * (c_attn) fill 16 lanes of 8-wide blocks but only 12 of 16-wide ones. Workgroups are 8 invocations wide, one SIMD
 * group, and 2 rows of blocks where M has 4 or fewer: llvmpipe runs a workgroup on one thread, and the small weight
 * gradients (64×64, 64×256) otherwise ran as one workgroup with the other thread idle. A decode step's one row takes
 * 4-row blocks. Where N is 58 to 64 (d = 64: the tiny preset, the CE head's dh and dwte) and M has more than 4 rows
 * of blocks, 16 x 16 blocks again, in workgroups 4 invocations wide (a SIMD group two rows of 4): every lane busy
 * and half the loads per FMA of 8-wide blocks. On llvmpipe that took dh's 256 x 64 x 16,384 slice from 48 to 32 ms
 * and dwte's 50,257 x 64 x 256 from 197 to 167 ms (wall, 5 alternated rounds); at N = 192 it was no faster.
 */
export function registerBlock(M: number, N: number): RegisterBlock {
  const RM = M <= 4 ? 4 : M <= 8 ? 8 : 16;
  if (N >= 58 && N <= 64 && M > 4 * RM) return { RM, RN: 16, WX: 4, WY: 4 };
  // The share of the columns computed (8 lanes of rn columns a workgroup) that lie in C.
  const used = (rn: number) => N / (8 * rn * Math.ceil(N / (8 * rn)));
  const best = Math.max(...[16, 8, 4].map(used));
  const RN = [16, 8, 4].find((rn) => used(rn) >= 0.9 * best)!;
  const WY = M <= RM ? 1 : M <= 4 * RM ? 2 : 4;
  return { RM, RN, WX: 8, WY };
}

/** An operand as stored: `rows` rows of `len` elements, `ld` apart, per batch item, item b at offset + b·stride. */
interface Stored {
  ref: TensorRef;
  rows: number;
  len: number;
  ld: number;
  stride: number;
  /** Rows run along K (TRANS_A's A, plain B): a K span is a range of rows, else of columns. */
  kMajor: boolean;
}

/**
 * Whether the register kernel can read an operand (vec4 rows, batch items whole rows apart), and whether as a
 * texture: the copy needs rows 256-byte aligned (ld a multiple of 64) unless it is one row, a buffer it may copy
 * from, and rows and width within the adapter's texture size; a K-major operand of a batched product is a texture
 * only when its K is one span (else each item's span would be a copy of its own). An f16 operand is read from
 * storage, at any offset (halves read alone when it is no multiple of 4).
 */
function storedPlan(gpu: Gpu, x: Stored, batch: number, K: number): { ok: boolean; texture: boolean } {
  const f16 = isF16(x.ref);
  const ok = x.ld % 4 === 0 && (f16 || offAny(x.ref) % 4 === 0) && x.stride % x.ld === 0;
  if (!ok || f16) return { ok, texture: false };
  const max = gpu.limits.maxTextureDimension2D ?? 8192;
  const span = Math.min(K, REGISTER_K_SPAN);
  const rows = (batch - 1) * (x.stride / x.ld) + (x.kMajor ? span : x.rows);
  const width = x.kMajor ? x.ld / 4 : Math.ceil(span / 4);
  const texture =
    gpu.storageTextureReads &&
    (rows === 1 || x.ld % 64 === 0) &&
    (x.ref.buffer.usage & GPUBufferUsage.COPY_SRC) !== 0 &&
    rows <= max &&
    width <= max &&
    !(x.kMajor && batch > 1 && K > REGISTER_K_SPAN);
  return { ok, texture };
}

export interface RegisterPlan {
  block: RegisterBlock;
  /** Operands read from textures (else from storage). */
  texA: boolean;
  texB: boolean;
}

/** How the register kernel would run a product; undefined when it cannot read the operands. */
export function registerPlan(
  gpu: Gpu,
  s: Pick<
    MatmulSpec,
    'M' | 'N' | 'K' | 'batch' | 'transA' | 'transB' | 'a' | 'b' | 'ldA' | 'ldB' | 'strideA' | 'strideB'
  >,
): RegisterPlan | undefined {
  const batch = s.batch ?? 1;
  const a = storedPlan(gpu, stored(s, 'A'), batch, s.K);
  const b = storedPlan(gpu, stored(s, 'B'), batch, s.K);
  if (!a.ok || !b.ok) return undefined;
  return { block: registerBlock(s.M, s.N), texA: a.texture, texB: b.texture };
}

function stored(
  s: Pick<MatmulSpec, 'M' | 'N' | 'K' | 'transA' | 'transB' | 'a' | 'b' | 'ldA' | 'ldB' | 'strideA' | 'strideB'>,
  which: 'A' | 'B',
): Stored {
  const { M, N, K } = s;
  if (which === 'A') {
    const t = s.transA ?? false;
    const [rows, len] = t ? [K, M] : [M, K];
    const ld = s.ldA ?? len;
    return { ref: s.a, rows, len, ld, stride: s.strideA ?? rows * ld, kMajor: t };
  }
  const t = s.transB ?? false;
  const [rows, len] = t ? [N, K] : [K, N];
  const ld = s.ldB ?? len;
  return { ref: s.b, rows, len, ld, stride: s.strideB ?? rows * ld, kMajor: !t };
}

/** C's row and batch strides. */
function layoutC(s: Pick<MatmulSpec, 'M' | 'N' | 'ldC' | 'strideC'>): { ldC: number; strideC: number } {
  const ldC = s.ldC ?? s.N;
  return { ldC, strideC: s.strideC ?? s.M * ldC };
}

function checkBuffers(label: string, s: MatmulSpec): void {
  const f16 = Object.entries({ C: s.c, 'the bias': s.bias, 'the residual': s.residual, 'the GELU output': s.gelu })
    .filter(([, r]) => isF16(r))
    .map(([name]) => name);
  if (f16.length) throw new HlmError(`${label}: only A and B may be f16; ${f16.join(', ')} must be f32`);
  const reads = [s.a.buffer, s.b.buffer, s.bias?.buffer, s.residual?.buffer].filter(Boolean);
  // WebGPU forbids binding a buffer read-only and writable in one dispatch.
  if (reads.includes(s.c.buffer))
    throw new HlmError(`${label}: C must not share a buffer with A, B, the bias or the residual`);
  if (s.gelu && reads.includes(s.gelu.buffer))
    throw new HlmError(`${label}: the GELU output must not share a buffer with A, B, the bias or the residual`);
}

/** The dispatches of one product (several along K on a software adapter); release frees them. */
export async function matmul(gpu: Gpu, s: MatmulSpec): Promise<Dispatch[]> {
  const { M, N, K } = s;
  const batch = s.batch ?? 1;
  const transA = s.transA ?? false;
  const transB = s.transB ?? false;
  const label =
    s.label ?? `matmul ${M}x${N}x${K}${transA ? ' Aᵀ' : ''}${transB ? ' Bᵀ' : ''}${batch > 1 ? ` ×${batch}` : ''}`;
  checkSizes(label, { M, N, K, batch });
  checkBuffers(label, s);
  for (const x of [stored(s, 'A'), stored(s, 'B')])
    if (!(Number.isInteger(x.ld) && x.ld >= x.len))
      throw new HlmError(`${label}: a stored row of ${x.len} elements cannot be ${x.ld} apart`);
  const { ldC } = layoutC(s);
  if (!(Number.isInteger(ldC) && ldC >= N))
    throw new HlmError(`${label}: rows of C of ${N} elements cannot be ${ldC} apart`);
  const plain = !s.tile && s.splitK === undefined;
  const halves = isF16(s.a) && isF16(s.b);
  if (s.kernel === 'subgroup-matrix' || (s.kernel === undefined && plain && halves)) {
    if (halves && plain && (await subgroupMatmulUsable(gpu)))
      return [await subgroupProduct(gpu, subgroupSpec(gpu, s, label))];
    if (s.kernel === 'subgroup-matrix')
      throw new HlmError(
        `${label}: the subgroup-matrix kernel takes two f16 operands, no tile or split, on a device whose f16 ` +
          `kernels are subgroup-matrix (${gpu.f16Kernels} here)`,
      );
  }
  const byDefault = plain && gpu.adapter.kind === 'software';
  if (s.kernel === 'registers' || (s.kernel === undefined && byDefault)) {
    const plan = registerPlan(gpu, s);
    if (plan) return registerProduct(gpu, s, label, plan);
    if (s.kernel === 'registers')
      throw new HlmError(
        `${label}: the register kernel reads rows of vec4s: A's and B's rows, offsets and batch strides must be ` +
          'multiples of 4 elements (offsets of f16 operands may be any), and the strides whole rows',
      );
  }
  return tiledProduct(gpu, s, label);
}

function subgroupSpec(gpu: Gpu, s: MatmulSpec, label: string): SubgroupProductSpec {
  const operand = (x: Stored) => ({ ref: x.ref, ld: x.ld, stride: x.stride });
  return {
    M: s.M,
    N: s.N,
    K: s.K,
    batch: s.batch ?? 1,
    transA: s.transA ?? false,
    transB: s.transB ?? false,
    a: operand(stored(s, 'A')),
    b: operand(stored(s, 'B')),
    c: s.c,
    ...layoutC(s),
    alpha: s.alpha ?? 1,
    beta: s.beta ?? 0,
    epilogue: epilogueBindings(gpu, s, true),
    label,
  };
}

/** The register kernel's dispatches: one per K span, each after copying its operand slices to textures. */
async function registerProduct(gpu: Gpu, s: MatmulSpec, label: string, plan: RegisterPlan): Promise<Dispatch[]> {
  const { M, N, K } = s;
  const batch = s.batch ?? 1;
  const { block, texA, texB } = plan;
  const layout = layoutC(s);
  const operands = [
    { x: stored(s, 'A'), tex: texA, name: 'A' },
    { x: stored(s, 'B'), tex: texB, name: 'B' },
  ] as const;
  const out: Dispatch[] = [];
  for (let k0 = 0; k0 < K; k0 += REGISTER_K_SPAN) {
    const kLen = Math.min(K, k0 + REGISTER_K_SPAN) - k0;
    const last = k0 + kLen === K;
    const kernel = await gpu.kernel('matmul_registers', {
      ...block,
      TRANS_A: s.transA ?? false,
      TRANS_B: s.transB ?? false,
      TEX_A: texA,
      TEX_B: texB,
      F16_A: isF16(s.a),
      F16_B: isF16(s.b),
      F16_UNALIGNED_A: isF16(s.a) && offAny(s.a) % 4 !== 0,
      F16_UNALIGNED_B: isF16(s.b) && offAny(s.b) % 4 !== 0,
      NATIVE_F16: (isF16(s.a) || isF16(s.b)) && gpu.nativeF16,
      K_TAIL: kLen % 4 !== 0,
      C_VEC4: N % 4 === 0 && off(s.c) % 4 === 0 && layout.ldC % 4 === 0 && layout.strideC % 4 === 0,
    });
    const bind: Record<string, Binding> = {};
    const params: Record<string, number> = {};
    const uploads: TextureUpload[] = [];
    for (const { x, tex, name } of operands) {
      // The span's first element: k0 rows down a K-major operand, else k0 columns along.
      const first = offAny(x.ref) + (x.kMajor ? k0 * x.ld : k0);
      const rowsPerItem = x.stride / x.ld;
      params[`rows${name}`] = rowsPerItem;
      if (tex) {
        const width = x.kMajor ? x.ld / 4 : Math.ceil(kLen / 4);
        const height = (batch - 1) * rowsPerItem + (x.kMajor ? kLen : x.rows);
        const texture = gpu.sharedTexture(`matmul ${name}`, width, height);
        uploads.push({ from: x.ref.buffer, offset: 4 * first, bytesPerRow: 4 * x.ld, to: texture, width, height });
        bind[name] = { texture };
        params[`off${name}`] = 0;
        params[`len${name}`] = 0;
      } else {
        bind[name] = x.ref.buffer;
        // In vec4s, or in halves for an f16 operand whose offset is no multiple of 4 (F16_UNALIGNED_A/_B).
        params[`off${name}`] = first % 4 === 0 ? first / 4 : first;
        params[`len${name}`] = x.ld / 4;
      }
    }
    const ep = epilogueBindings(gpu, s, last);
    out.push(
      gpu.dispatch(K > kLen ? `${label} k ${k0}..${k0 + kLen}` : label, kernel, {
        bind: { ...bind, C: s.c.buffer, ...ep.bind },
        params: {
          M,
          N,
          kLen,
          offC: off(s.c),
          ...layout,
          alpha: s.alpha ?? 1,
          beta: k0 ? 1 : (s.beta ?? 0),
          ...params,
          ...ep.params,
        },
        groups: [Math.ceil(N / (block.RN * block.WX)), Math.ceil(M / (block.RM * block.WY)), batch],
        uploads,
      }),
    );
  }
  return out;
}

/** The tiled kernel's dispatches: split K summed by a second dispatch, or K spans on a software adapter. */
async function tiledProduct(gpu: Gpu, s: MatmulSpec, label: string): Promise<Dispatch[]> {
  const { M, N, K } = s;
  const batch = s.batch ?? 1;
  const transA = s.transA ?? false;
  const transB = s.transB ?? false;
  const plan = defaultPlan(gpu.adapter.kind, M, N, K, batch);
  const tile = s.tile ?? plan.tile;
  checkTile(tile);
  const offA = offAny(s.a);
  const offB = offAny(s.b);
  const offC = off(s.c);
  const a = stored(s, 'A');
  const b = stored(s, 'B');
  const { stride: strideA, ld: ldA } = a;
  const { stride: strideB, ld: ldB } = b;
  const { ldC, strideC } = layoutC(s);
  // vec4 loads (a vec2<u32> of f16 operand) need the contiguous dimension, the offset and the batch stride all
  // divisible by 4.
  // A padded row is read in vec4s only when its length is a multiple of 4 too, so that no vec4 reaches the padding.
  const vecA = a.len % 4 === 0 && ldA % 4 === 0 && offA % 4 === 0 && strideA % 4 === 0;
  const vecB = b.len % 4 === 0 && ldB % 4 === 0 && offB % 4 === 0 && strideB % 4 === 0;
  const kernel = await gpu.kernel('matmul', {
    ...tile,
    TRANS_A: transA,
    TRANS_B: transB,
    VEC_A: vecA,
    VEC_B: vecB,
    F16_A: isF16(s.a),
    F16_B: isF16(s.b),
    NATIVE_F16: (isF16(s.a) || isF16(s.b)) && gpu.nativeF16,
    C_VEC4: false,
  });
  const workgroups = (z: number): [number, number, number] => [Math.ceil(N / tile.BN), Math.ceil(M / tile.BM), z];
  // The parameters every dispatch of the product shares; each adds its K range, C and scaling.
  const shape = { M, N, K, offA, offB, strideA, strideB, ldA, ldB };
  const alpha = s.alpha ?? 1;
  const beta = s.beta ?? 0;
  const operands = { A: s.a.buffer, B: s.b.buffer };

  const parts = s.splitK ?? (s.tile ? 1 : plan.parts);
  if (!(Number.isInteger(parts) && parts >= 1 && parts <= K))
    throw new HlmError(`${label}: splitK must be an integer from 1 to K = ${K}, got ${parts}`);
  if (parts > 1) {
    if (gpu.adapter.kind === 'software' && K > SOFTWARE_K_SPAN * parts)
      throw new HlmError(`${label}: K = ${K} in ${parts} parts is past llvmpipe's loop limit; use more parts`);
    // Each part's span is a multiple of BK, so that a part's vec4 loads never straddle its end.
    const kPart = Math.ceil(K / parts / tile.BK) * tile.BK;
    const used = Math.ceil(K / kPart);
    const scratch = gpu.shared('matmul split-K', used * batch * M * N * 4);
    const sum = await gpu.kernel('matmul_splitk_sum', { C_VEC4: false });
    const plain = epilogueBindings(gpu, s, false);
    const ep = epilogueBindings(gpu, s, true);
    return [
      gpu.dispatch(`${label} (${used} K parts)`, kernel, {
        bind: { ...operands, C: scratch, ...plain.bind },
        // Part p of batch item b goes to scratch[(b·used + p)·M·N ..], unscaled.
        params: {
          ...shape,
          kBegin: 0,
          kEnd: K,
          kPart,
          parts: used,
          strideP: M * N,
          offC: 0,
          ldC: N,
          strideC: used * M * N,
          alpha: 1,
          beta: 0,
          ...plain.params,
        },
        groups: workgroups(batch * used),
      }),
      gpu.dispatch(`${label} sum of K parts`, sum, {
        bind: { P: scratch, C: s.c.buffer, ...ep.bind },
        params: { MN: M * N, N, ldC, parts: used, total: batch * M * N, offC, strideC, alpha, beta, ...ep.params },
        groups: elementGrid(gpu, sum, batch * M * N),
      }),
    ];
  }

  const span = gpu.adapter.kind === 'software' ? Math.max(tile.BK, Math.floor(SOFTWARE_K_SPAN / tile.BK) * tile.BK) : K;
  const out: Dispatch[] = [];
  for (let k0 = 0; k0 < K; k0 += span) {
    const kEnd = Math.min(K, k0 + span);
    const part = span < K ? `${label} k ${k0}..${kEnd}` : label;
    const ep = epilogueBindings(gpu, s, kEnd === K);
    out.push(
      gpu.dispatch(part, kernel, {
        bind: { ...operands, C: s.c.buffer, ...ep.bind },
        params: {
          ...shape,
          kBegin: k0,
          kEnd,
          kPart: kEnd - k0,
          parts: 1,
          strideP: 0,
          offC,
          ldC,
          strideC,
          alpha,
          beta: k0 ? 1 : beta,
          ...ep.params,
        },
        groups: workgroups(batch),
      }),
    );
  }
  return out;
}
