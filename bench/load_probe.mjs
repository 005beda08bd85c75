#!/usr/bin/env node
// What one 8-lane vec4 load costs on a software adapter (llvmpipe): from a sampled texture, a read-only storage texture
// (image), a storage buffer, a uniform buffer or workgroup memory, with an index that differs per lane, is the same
// in every lane (the loop counter and workgroup id only), or is a constant. Each invocation folds 4,096 loads into an
// FMA chain; the figure is process CPU time per SIMD group's load. It showed (issue 14, fifth session) that llvmpipe
// makes only a constant-index uniform-buffer load cheap, so a matmul cannot broadcast A's rows through a uniform
// index; (sixth session) that a read-only storage texture loads at half a sampled texture's cost, so matmul's register
// kernel reads its texture operands that way; and (seventh session) that workgroup memory is no cheaper inside a
// loop, whatever the index: llvmpipe loads it lane by lane there. Not part of the test suite.
// Run after `npm run build`:
//   EGL_PLATFORM=surfaceless node bench/load_probe.mjs [--device cpu]
/* global GPUBufferUsage, GPUTextureUsage */
import { Gpu } from '../dist/src/gpu/device.js';

const at = process.argv.indexOf('--device');
const gpu = await Gpu.open(at > 0 ? process.argv[at + 1] : 'cpu');
const dev = gpu.device;
console.log(`adapter: ${gpu.name}`);
const SIZE = 4096; // vec4s: 64 KiB, a uniform buffer's limit
const ITERS = 4096;
const GROUPS = 64; // of 8 x 4 invocations
const sources = {
  texture: ['var S: texture_2d<f32>;', (i) => `textureLoad(S, vec2<u32>(${i} % 64u, ${i} / 64u), 0)`],
  image: ['var S: texture_storage_2d<rgba32float, read>;', (i) => `textureLoad(S, vec2<u32>(${i} % 64u, ${i} / 64u))`],
  storage: ['var<storage, read> S: array<vec4<f32>>;', (i) => `S[${i}]`],
  uniform: [`var<uniform> S: array<vec4<f32>, ${SIZE}>;`, (i) => `S[${i}]`],
  // Workgroup memory holds 32 KiB at most here: half the others' size, filled before the loop.
  workgroup: [`var<workgroup> S: array<vec4<f32>, ${SIZE / 2}>;`, (i) => `S[${i} & ${SIZE / 2 - 1}u]`],
};
// Workgroup memory has no binding: the invocations fill it, then wait for each other.
const fill = `for (var j = t; j < ${SIZE / 2}u; j += 32u) { S[j] = vec4<f32>(f32(j % 7u) * 0.001); }
  workgroupBarrier();`;
const indices = {
  'per lane': '((t * 37u + i * 101u) & 4095u)',
  'loop + workgroup': '((wg.x * 37u + i * 101u) & 4095u)',
  loop: '((i * 101u) & 4095u)',
  constant: '7u',
};
const data = new Float32Array(SIZE * 4).map((_, i) => (i % 7) * 0.001);
const buf = dev.createBuffer({
  size: SIZE * 16,
  usage: GPUBufferUsage.STORAGE | GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
});
dev.queue.writeBuffer(buf, 0, data);
const tex = dev.createTexture({
  size: [64, 64],
  format: 'rgba32float',
  usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
});
dev.queue.writeTexture({ texture: tex }, data, { bytesPerRow: 64 * 16 }, [64, 64]);
const out = dev.createBuffer({ size: GROUPS * 32 * 16, usage: GPUBufferUsage.STORAGE });
console.log('source    index              ns per 8-lane vec4 load (with its FMA)');
for (const [name, [decl, load]] of Object.entries(sources)) {
  for (const [kind, index] of Object.entries(indices)) {
    const code = `${name === 'workgroup' ? '' : '@group(0) @binding(0) '}${decl}
@group(0) @binding(1) var<storage, read_write> O: array<vec4<f32>>;
@compute @workgroup_size(8, 4)
fn main(@builtin(global_invocation_id) g: vec3<u32>, @builtin(workgroup_id) wg: vec3<u32>,
        @builtin(local_invocation_index) t: u32) {
  ${name === 'workgroup' ? fill : ''}
  var acc = vec4<f32>(0.0);
  for (var i = 0u; i < ${ITERS}u; i++) { acc = fma(acc, vec4<f32>(0.999), ${load(index)}); }
  O[g.y * 8u * ${GROUPS}u + g.x] = acc + f32(t);
}`;
    const module = dev.createShaderModule({ code });
    const pipeline = await dev.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const bind = dev.createBindGroup({
      layout: pipeline.getBindGroupLayout(0),
      entries: [
        ...(name === 'workgroup'
          ? []
          : [{ binding: 0, resource: name === 'texture' || name === 'image' ? tex.createView() : { buffer: buf } }]),
        { binding: 1, resource: { buffer: out } },
      ],
    });
    const run = async () => {
      const enc = dev.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bind);
      pass.dispatchWorkgroups(GROUPS);
      pass.end();
      dev.queue.submit([enc.finish()]);
      await dev.queue.onSubmittedWorkDone();
    };
    await run();
    const c0 = process.cpuUsage();
    for (let r = 0; r < 5; r++) await run();
    const c = process.cpuUsage(c0);
    const ms = (c.user + c.system) / 1e3 / 5;
    const loads = GROUPS * 4 * ITERS; // SIMD groups of 8 lanes, each ITERS loads
    console.log(`${name.padEnd(9)} ${kind.padEnd(18)} ${((ms * 1e6) / loads).toFixed(2).padStart(6)}`);
  }
}
gpu.destroy();
