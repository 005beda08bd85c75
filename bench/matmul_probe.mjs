#!/usr/bin/env node
// Design-space probe for the software adapter's matmul (llvmpipe): generates register-blocked WGSL
// variants, checks each against a float64 product on sampled entries, and times them in the
// sustained way (a sample submits `reps` back-to-back dispatches and waits once), reporting both
// wall-clock and process-CPU-time throughput (the latter survives a busy machine).
// Not part of the test suite. Run after `npm run build`:
//   EGL_PLATFORM=surfaceless node bench/matmul_probe.mjs --size 512 --rounds 7 --order kin \
//     --variants hlm,y16x16w16x4,r8x16w8x8
// Variant names: `hlm`, `hlmtn`, ... (the shipped kernels through src/kernels/matmul.ts), or
//   r<RM>x<RN>w<WX>x<WY>[k<KC>][nn|nt|tn|tt][s]: each invocation an RM×RN block of C (multiples of 4) in
//   scalar registers, workgroup WX×WY, loads vec4 along each operand's contiguous dimension, no
//   workgroup memory; suffix s: scalar loads instead of vec4. Prefix x instead of r: operands read from
//   rgba32float textures holding the flat arrays (--tex-w texels a row); prefix y: textures shaped like the
//   matrices (textures are read-only storage textures; --sampled: sampled ones, at about twice the load cost);
//   k<KC>: no loop, the dispatch covers KC values of k unrolled and adds to C (3x slower on Mesa 25.0.7).
//   u<RM>x<RN>w<WX>k<KC>[x]: A staged in workgroup memory and read at constant indices (KC values
//   of k a dispatch, no loop), B per invocation (x: from a texture). b<RM>x<RN>w<WX>[x]: NN, each workgroup RM rows
//   of A read from storage at indices uniform in the workgroup (workgroup id and k loop only), each invocation RN
//   columns of B (x: from a texture shaped like B); on Mesa 25.0.7 this ran at under half the shipped kernel's rate.
// Options: --order kin (each accumulator's k-steps back to back; default k outermost) or rows (B first, each row of
// A read just before its FMAs), --micro MIxMJ (FMAs in micro-tiles of MI×MJ accumulators), --ku 8 (k values a loop
// iteration), --small-set (every iteration reads the same few rows: wrong results, no cache misses), --trace (each
// round's rate), --copy (the buffer-to-texture copies in every repetition), --shape MxNxK, --min-ms, --device.
/* global GPUBufferUsage, GPUTextureUsage */
import { Gpu } from '../dist/src/gpu/device.js';
import { matmul } from '../dist/src/kernels/matmul.js';

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .join(' ')
    .split('--')
    .filter(Boolean)
    .map((s) => {
      const [k, ...v] = s.trim().split(/\s+/);
      return [k, v.join(' ') || 'true'];
    }),
);
const size = Number(args.size ?? 512);
const [M, N, K] = (args.shape ?? `${size}x${size}x${size}`).split('x').map(Number);
const rounds = Number(args.rounds ?? 3);
const minMs = Number(args['min-ms'] ?? 25);
const variants = (args.variants ?? 'hlm,r4x8w16x4').split(',');

function parse(name) {
  const bc = /^b(\d+)x(\d+)w(\d+)(x?)$/.exec(name);
  if (bc)
    return { bcast: true, uni: true, RM: +bc[1], RN: +bc[2], WX: +bc[3], tex: bc[4], transA: false, transB: false };
  const u = /^u(\d+)x(\d+)w(\d+)k(\d+)(x?)$/.exec(name);
  if (u)
    return {
      uni: true,
      RM: +u[1],
      RN: +u[2],
      WX: +u[3],
      KC: +u[4],
      tex: u[5],
      transA: false,
      transB: false,
      vec: true,
    };
  const m = /^([rxy])(\d+)x(\d+)w(\d+)x(\d+)(?:k(\d+))?(nn|nt|tn|tt)?(s)?$/.exec(name);
  if (!m) throw new Error(`unknown variant ${name}`);
  const t = m[7] ?? 'nn';
  return {
    tex: m[1] === 'r' ? '' : m[1],
    RM: +m[2],
    RN: +m[3],
    WX: +m[4],
    WY: +m[5],
    KC: m[6] ? +m[6] : 0,
    transA: t[0] === 't',
    transB: t[1] === 't',
    vec: !m[8],
  };
}

/**
 * C = op(A)·op(B) with each invocation owning rows m..m+RM and columns n..n+RN. K is walked 4 at a time;
 * per step it loads a 4×RM block of A and a 4×RN block of B as vec4 along whichever dimension is contiguous
 * (llvmpipe loads every lane's vec4 in one loop over lanes, so fewer, wider loads cost less) and does
 * 4·RM·RN scalar FMAs (SoA: vec4 and scalar code vectorise alike across invocations).
 */
const TEX_W = Number(args['tex-w'] ?? 64);
// --sampled: operands from sampled textures (texture_2d) instead of read-only storage textures, whose loads cost
// llvmpipe about half as much (no per-lane mip level arithmetic).
const TEX_T = args.sampled ? 'texture_2d<f32>' : 'texture_storage_2d<rgba32float, read>';
const LVL = args.sampled ? ', 0' : '';

/**
 * Broadcast A: a workgroup owns RM rows (all its invocations the same rows) × WX·RN columns, and a dispatch covers
 * KC values of k with no loop. A's RM×KC block is staged in workgroup memory and read back at constant indices,
 * which llvmpipe loads once and broadcasts (outside loops, a constant-offset load is uniform); B is read per
 * invocation. Dispatches after the first add to C.
 */
function uniKernel(v) {
  const { RM, RN, WX, KC, tex } = v;
  const L = [];
  L.push(`struct Params { M: u32, N: u32, K: u32, kOff: u32 }`);
  L.push(`@group(0) @binding(0) var<storage, read> A: array<f32>;`);
  if (tex) L.push(`@group(0) @binding(1) var B: ${TEX_T};`);
  else L.push(`@group(0) @binding(1) var<storage, read> B: array<vec4<f32>>;`);
  L.push(`@group(0) @binding(2) var<storage, read_write> C: array<f32>;`);
  L.push(`@group(0) @binding(3) var<uniform> p: Params;`);
  L.push(`var<workgroup> As: array<f32, ${RM * KC}>;`);
  L.push(`@compute @workgroup_size(${WX})`);
  L.push(`fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {`);
  L.push(`  let m0 = wg.y * ${RM}u;`);
  L.push(`  let n = (wg.x * ${WX}u + t) * ${RN}u;`);
  // staging: RM*KC elements over WX invocations (assume divisible)
  for (let r = 0; r < (RM * KC) / WX; r++) {
    L.push(`  { let e = ${r * WX}u + t; let i = e / ${KC}u; let kk = e % ${KC}u;`);
    L.push(`    As[e] = A[(m0 + i) * p.K + p.kOff + kk]; }`);
  }
  L.push(`  workgroupBarrier();`);
  for (let i = 0; i < RM; i++) for (let j = 0; j < RN; j++) L.push(`  var c${i}_${j} = 0.0;`);
  for (let kk = 0; kk < KC; kk++) {
    const b = [];
    for (let q = 0; q < RN / 4; q++) {
      const name = `b${kk}_${q}`;
      if (tex) L.push(`  let ${name} = textureLoad(B, vec2<u32>(n / 4u + ${q}u, p.kOff + ${kk}u)${LVL});`);
      else L.push(`  let ${name} = B[((p.kOff + ${kk}u) * p.N + n) / 4u + ${q}u];`);
      b.push(`${name}.x`, `${name}.y`, `${name}.z`, `${name}.w`);
    }
    for (let i = 0; i < RM; i++) {
      L.push(`  { let a = As[${i * KC + kk}u];`);
      for (let j = 0; j < RN; j++) L.push(`    c${i}_${j} = fma(a, ${b[j]}, c${i}_${j});`);
      L.push(`  }`);
    }
  }
  L.push(`  if (p.kOff != 0u) {`);
  for (let i = 0; i < RM; i++)
    for (let j = 0; j < RN; j++) L.push(`    c${i}_${j} += C[(m0 + ${i}u) * p.N + n + ${j}u];`);
  L.push(`  }`);
  for (let i = 0; i < RM; i++) for (let j = 0; j < RN; j++) L.push(`  C[(m0 + ${i}u) * p.N + n + ${j}u] = c${i}_${j};`);
  L.push(`}`);
  return {
    code: L.join('\n'),
    groups: [N / RN / WX, M / RM, 1],
    kOffs: Array.from({ length: K / KC }, (_, c) => c * KC),
  };
}

/**
 * Broadcast A: a workgroup (WX invocations, one or two SIMD groups) owns RM rows, the same for every invocation, so
 * A's index depends only on the workgroup and the k loop: if llvmpipe proves it uniform it loads A once and
 * broadcasts it. Each invocation owns RN columns of B (storage or, with x, a texture shaped like B).
 */
function bcastKernel(v) {
  const { RM, RN, WX, tex } = v;
  const L = [];
  L.push(`struct Params { M: u32, N: u32, K: u32, kOff: u32 }`);
  L.push(`@group(0) @binding(0) var<storage, read> A: array<vec4<f32>>;`);
  if (tex) L.push(`@group(0) @binding(1) var B: ${TEX_T};`);
  else L.push(`@group(0) @binding(1) var<storage, read> B: array<vec4<f32>>;`);
  L.push(`@group(0) @binding(2) var<storage, read_write> C: array<vec4<f32>>;`);
  L.push(`@group(0) @binding(3) var<uniform> p: Params;`);
  L.push(`@compute @workgroup_size(${WX})`);
  L.push(`fn main(@builtin(workgroup_id) wg: vec3<u32>, @builtin(local_invocation_index) t: u32) {`);
  L.push(`  let m0 = wg.y * ${RM}u;`);
  L.push(`  let n = (wg.x * ${WX}u + t) * ${RN}u;`);
  for (let i = 0; i < RM; i++) for (let q = 0; q < RN / 4; q++) L.push(`  var c${i}_${q} = vec4<f32>(0.0);`);
  L.push(`  for (var k = 0u; k < p.K; k += 4u) {`);
  for (let kk = 0; kk < 4; kk++)
    for (let q = 0; q < RN / 4; q++) {
      if (tex) L.push(`    let b${kk}_${q} = textureLoad(B, vec2<u32>(n / 4u + ${q}u, k + ${kk}u)${LVL});`);
      else L.push(`    let b${kk}_${q} = B[((k + ${kk}u) * p.N + n) / 4u + ${q}u];`);
    }
  for (let i = 0; i < RM; i++) {
    L.push(`    { let a = A[((m0 + ${i}u) * p.K + k) / 4u];`);
    for (let q = 0; q < RN / 4; q++) {
      const acc = `c${i}_${q}`;
      let sum = acc;
      for (const [kk, c] of ['x', 'y', 'z', 'w'].entries()) sum = `fma(vec4<f32>(a.${c}), b${kk}_${q}, ${sum})`;
      L.push(`      ${acc} = ${sum};`);
    }
    L.push(`    }`);
  }
  L.push(`  }`);
  for (let i = 0; i < RM; i++)
    for (let q = 0; q < RN / 4; q++) L.push(`  C[((m0 + ${i}u) * p.N + n) / 4u + ${q}u] = c${i}_${q};`);
  L.push(`}`);
  return { code: L.join('\n'), groups: [N / RN / WX, M / RM, 1], kOffs: [0] };
}

function regKernel(v) {
  const { RM, RN, WX, WY, transA, transB, vec, tex } = v;
  const KU = Number(args.ku ?? 4); // k values per loop iteration (a multiple of 4)
  const L = [];
  const ty = vec ? 'vec4<f32>' : 'f32';
  L.push(`struct Params { M: u32, N: u32, K: u32, kOff: u32 }`);
  if (tex) {
    // Operands as rgba32float textures TEX_W texels wide holding the flat arrays (texel t = elements 4t..4t+3).
    L.push(`@group(0) @binding(0) var A: ${TEX_T};`);
    L.push(`@group(0) @binding(1) var B: ${TEX_T};`);
  } else {
    L.push(`@group(0) @binding(0) var<storage, read> A: array<${ty}>;`);
    L.push(`@group(0) @binding(1) var<storage, read> B: array<${ty}>;`);
  }
  L.push(`@group(0) @binding(2) var<storage, read_write> C: array<f32>;`);
  L.push(`@group(0) @binding(3) var<uniform> p: Params;`);
  L.push(`@compute @workgroup_size(${WX}, ${WY})`);
  L.push(`fn main(@builtin(global_invocation_id) g: vec3<u32>) {`);
  L.push(`  let m = min(g.y * ${RM}u, p.M - ${RM}u);`);
  L.push(`  let n = min(g.x * ${RN}u, p.N - ${RN}u);`);
  // k<KC> suffix: no loop; the dispatch covers KC values of k from p.kOff, unrolled, and adds to C after the first.
  const KC = v.KC;
  if (KC) L.push(`  let beta = f32(min(p.kOff, 1u));`);
  for (let i = 0; i < RM; i++)
    for (let j = 0; j < RN; j++)
      L.push(KC ? `  var c${i}_${j} = beta * C[(m + ${i}u) * p.N + n + ${j}u];` : `  var c${i}_${j} = 0.0;`);
  for (let step = 0; step < (KC ? KC / KU : 1); step++) {
    L.push(KC ? `  { let k = p.kOff + ${step * KU}u;` : `  for (var kLoop = 0u; kLoop < p.K; kLoop += ${KU}u) {`);
    // --small-set: every iteration reads the same few rows and columns (wrong results, no cache misses).
    if (!KC) L.push(args['small-set'] ? `    let k = kLoop & 7u;` : `    let k = kLoop;`);
    // `count` consecutive elements of row `row` (of `width` elements) from column `col` on, as scalar expressions.
    let names = 0;
    const ld = (buf, row, col, width, count) => {
      const out = [];
      if (vec) {
        for (let q = 0; q < count / 4; q++) {
          const name = `${buf.toLowerCase()}${names++}`;
          if (tex === 'x') {
            L.push(`    let t${name} = ((${row}) * ${width} + ${col}) / 4u + ${q}u;`);
            L.push(
              `    let ${name} = textureLoad(${buf}, vec2<u32>(t${name} % ${TEX_W}u, t${name} / ${TEX_W}u)${LVL});`,
            );
          } else if (tex === 'y') {
            L.push(`    let ${name} = textureLoad(${buf}, vec2<u32>((${col}) / 4u + ${q}u, ${row})${LVL});`);
          } else L.push(`    let ${name} = ${buf}[((${row}) * ${width} + ${col}) / 4u + ${q}u];`);
          out.push(`${name}.x`, `${name}.y`, `${name}.z`, `${name}.w`);
        }
      } else {
        for (let q = 0; q < count; q++) {
          const name = `${buf.toLowerCase()}${names++}`;
          L.push(`    let ${name} = ${buf}[(${row}) * ${width} + ${col} + ${q}u];`);
          out.push(name);
        }
      }
      return out;
    };
    const a = Array.from({ length: KU }, () => []);
    const b = Array.from({ length: KU }, () => []);
    // --order rows (row-major A only): B's block first, then each row of A fetched just before its FMAs, so that
    // the row's values can stay in registers while every column uses them.
    const rows = args.order === 'rows' && !transA;
    const fmaRow = (i) => {
      for (let j = 0; j < RN; j++)
        for (let kk = 0; kk < KU; kk++) L.push(`    c${i}_${j} = fma(${a[kk][i]}, ${b[kk][j]}, c${i}_${j});`);
    };
    if (rows) {
      if (transB)
        for (let j = 0; j < RN; j++) {
          const r = ld('B', `n + ${j}u`, 'k', 'p.K', KU);
          for (let kk = 0; kk < KU; kk++) b[kk][j] = r[kk];
        }
      else for (let kk = 0; kk < KU; kk++) b[kk] = ld('B', `k + ${kk}u`, 'n', 'p.N', RN);
      for (let i = 0; i < RM; i++) {
        const r = ld('A', `m + ${i}u`, 'k', 'p.K', KU);
        for (let kk = 0; kk < KU; kk++) a[kk][i] = r[kk];
        fmaRow(i);
      }
    } else if (transA) {
      for (let kk = 0; kk < KU; kk++) a[kk] = ld('A', `k + ${kk}u`, 'm', 'p.M', RM);
    } else {
      for (let i = 0; i < RM; i++) {
        const r = ld('A', `m + ${i}u`, 'k', 'p.K', KU);
        for (let kk = 0; kk < KU; kk++) a[kk][i] = r[kk];
      }
    }
    if (transB) {
      for (let j = 0; j < RN; j++) {
        const r = ld('B', `n + ${j}u`, 'k', 'p.K', KU);
        for (let kk = 0; kk < KU; kk++) b[kk][j] = r[kk];
      }
    } else {
      for (let kk = 0; kk < KU; kk++) b[kk] = ld('B', `k + ${kk}u`, 'n', 'p.N', RN);
    }
    // --order kin: each accumulator's 4 k-steps back to back (fewer spill round trips); default kk outermost.
    if (rows);
    else if (args.micro) {
      // --micro MIxMJ: GEMM micro-tiles, MI x MJ accumulators (plus MI + MJ operands) that fit the 16 vector
      // registers, each run over the iteration's KU values of k before the next tile.
      const [MI, MJ] = args.micro.split('x').map(Number);
      for (let i0 = 0; i0 < RM; i0 += MI)
        for (let j0 = 0; j0 < RN; j0 += MJ)
          for (let kk = 0; kk < KU; kk++)
            for (let i = i0; i < i0 + MI; i++)
              for (let j = j0; j < j0 + MJ; j++) L.push(`    c${i}_${j} = fma(${a[kk][i]}, ${b[kk][j]}, c${i}_${j});`);
    } else if (args.order === 'kin')
      for (let i = 0; i < RM; i++)
        for (let j = 0; j < RN; j++)
          for (let kk = 0; kk < KU; kk++) L.push(`    c${i}_${j} = fma(${a[kk][i]}, ${b[kk][j]}, c${i}_${j});`);
    else
      for (let kk = 0; kk < KU; kk++)
        for (let i = 0; i < RM; i++)
          for (let j = 0; j < RN; j++) L.push(`    c${i}_${j} = fma(${a[kk][i]}, ${b[kk][j]}, c${i}_${j});`);
    L.push(`  }`);
  }
  for (let i = 0; i < RM; i++) for (let j = 0; j < RN; j++) L.push(`  C[(m + ${i}u) * p.N + n + ${j}u] = c${i}_${j};`);
  L.push(`}`);
  return {
    code: L.join('\n'),
    groups: [Math.ceil(N / RN / WX), Math.ceil(M / RM / WY), 1],
    kOffs: KC ? Array.from({ length: K / KC }, (_, c) => c * KC) : [0],
  };
}

function random(n, seed) {
  let s = seed >>> 0;
  return Float32Array.from({ length: n }, () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 2 ** 32 - 0.5;
  });
}

const gpu = await Gpu.open(args.device ?? 'cpu');
console.error(`adapter: ${gpu.name}; LP_NATIVE_VECTOR_WIDTH=${process.env.LP_NATIVE_VECTOR_WIDTH ?? ''}`);
const flops = 2 * M * N * K;

async function build(name) {
  const isHlm = name.startsWith('hlm');
  const tr = isHlm ? { transA: name.includes('tn') || name.includes('tt'), transB: /nt|tt/.test(name) } : parse(name);
  const a = random(M * K, 1);
  const b = random(K * N, 2);
  const A = gpu.upload('A', a);
  const B = gpu.upload('B', b);
  const C = gpu.buffer('C', M * N * 4);
  let submit;
  if (isHlm) {
    const ds = await matmul(gpu, {
      M,
      N,
      K,
      transA: tr.transA,
      transB: tr.transB,
      a: { buffer: A },
      b: { buffer: B },
      c: { buffer: C },
    });
    submit = (reps) => gpu.submit(Array.from({ length: reps }, () => ds).flat(), 'probe');
  } else {
    const v = parse(name);
    const { code, groups, kOffs = [0] } = v.bcast ? bcastKernel(v) : v.uni ? uniKernel(v) : regKernel(v);
    const module = gpu.device.createShaderModule({ code });
    const info = await module.getCompilationInfo();
    for (const m of info.messages) if (m.type === 'error') throw new Error(`${name}: ${m.lineNum}: ${m.message}`);
    const pipeline = await gpu.device.createComputePipelineAsync({
      layout: 'auto',
      compute: { module, entryPoint: 'main' },
    });
    const unis = kOffs.map((kOff) => {
      const u = gpu.device.createBuffer({ size: 16, usage: GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST });
      gpu.device.queue.writeBuffer(u, 0, new Uint32Array([M, N, K, kOff]));
      return u;
    });
    const copies = [];
    const asTexture = (buf, n, rowLen) => {
      const W = v.tex === 'y' || v.uni ? rowLen / 4 : TEX_W;
      const height = Math.ceil(n / 4 / W);
      // --tex-pad P: the texture P texels wider than its rows (as Gpu.sharedTexture pads them); rows copied as is.
      const t = gpu.device.createTexture({
        size: [W + Number(args['tex-pad'] ?? 0), height],
        format: 'rgba32float',
        usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
      });
      const enc = gpu.device.createCommandEncoder();
      const padded = gpu.buffer('padded', W * 16 * height);
      enc.copyBufferToBuffer(buf, 0, padded, 0, n * 4);
      enc.copyBufferToTexture({ buffer: padded, bytesPerRow: W * 16 }, { texture: t }, [W, height]);
      gpu.device.queue.submit([enc.finish()]);
      copies.push((e) => e.copyBufferToTexture({ buffer: padded, bytesPerRow: W * 16 }, { texture: t }, [W, height]));
      return t.createView();
    };
    const res = v.uni
      ? [{ buffer: A }, v.tex ? asTexture(B, K * N, N) : { buffer: B }]
      : v.tex
        ? [asTexture(A, M * K, v.transA ? M : K), asTexture(B, K * N, v.transB ? K : N)]
        : [{ buffer: A }, { buffer: B }];
    const binds = unis.map((uni) =>
      gpu.device.createBindGroup({
        layout: pipeline.getBindGroupLayout(0),
        entries: [...res, { buffer: C }, { buffer: uni }].map((resource, binding) => ({ binding, resource })),
      }),
    );
    submit = (reps) => {
      const enc = gpu.device.createCommandEncoder();
      // --copy: each repetition first copies its operands into the textures (what a product would cost).
      if (args.copy) for (let r = 0; r < reps; r++) for (const c of copies) c(enc);
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      for (let r = 0; r < reps; r++)
        for (const bind of binds) {
          pass.setBindGroup(0, bind);
          pass.dispatchWorkgroups(...groups);
        }
      pass.end();
      gpu.device.queue.submit([enc.finish()]);
    };
  }
  // Check 64 sampled entries against float64.
  submit(1);
  await gpu.done();
  const c = await gpu.readF32(C);
  let err = 0;
  let norm = 0;
  for (let s = 0; s < 64; s++) {
    const i = (s * 7919) % M;
    const j = (s * 104729) % N;
    let want = 0;
    for (let k = 0; k < K; k++)
      want += (tr.transA ? a[k * M + i] : a[i * K + k]) * (tr.transB ? b[j * K + k] : b[k * N + j]);
    err += (c[i * N + j] - want) ** 2;
    norm += want ** 2;
  }
  const rel = Math.sqrt(err / norm);
  if (!(rel < 1e-5) && !args['small-set']) throw new Error(`${name}: relative error ${rel}`);
  // Repetitions per sample: enough for minMs of wall time.
  let reps = 1;
  for (;;) {
    const t0 = performance.now();
    submit(reps);
    await gpu.done();
    if (performance.now() - t0 >= minMs || reps >= 4096) break;
    reps *= 2;
  }
  return { name, submit, reps, wall: [], cpu: [] };
}

const built = [];
for (const v of variants) built.push(await build(v));
for (let r = 0; r < rounds; r++) {
  for (const b of built) {
    const c0 = process.cpuUsage();
    const t0 = performance.now();
    b.submit(b.reps);
    await gpu.done();
    const wall = performance.now() - t0;
    const c = process.cpuUsage(c0);
    b.wall.push(wall / b.reps);
    b.cpu.push((c.user + c.system) / 1e3 / b.reps);
  }
  // --trace: each round's wall GFLOP/s, to tell a slow process from a slow moment.
  if (args.trace) console.log(`round ${r}: ${built.map((b) => (flops / b.wall.at(-1) / 1e6).toFixed(1)).join(' ')}`);
}
const med = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
console.log(`shape ${M}x${N}x${K}; ${rounds} rounds alternating; min ${minMs} ms a sample`);
console.log('variant                 reps  wall ms  GFLOP/s(wall)  cpu ms  GFLOP/cpu-s  best GFLOP/cpu-s');
for (const b of built) {
  const w = med(b.wall);
  const c = med(b.cpu);
  console.log(
    `${b.name.padEnd(22)} ${String(b.reps).padStart(5)} ${w.toFixed(2).padStart(8)} ` +
      `${(flops / w / 1e6).toFixed(1).padStart(14)} ${c.toFixed(2).padStart(7)} ` +
      `${(flops / c / 1e6).toFixed(1).padStart(12)}` +
      `${(flops / Math.min(...b.cpu) / 1e6).toFixed(1).padStart(18)}`,
  );
}
gpu.destroy();
