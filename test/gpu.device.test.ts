import { openTestGpu } from './helpers/gpu.js';
import type { Gpu } from '../src/gpu/device.js';
import { specialise } from '../src/gpu/shaders.js';
import { ShaderCompileError } from '../src/errors.js';

let gpu: Gpu;
beforeAll(async () => {
  gpu = await openTestGpu();
});
afterAll(() => gpu?.destroy());

test('buffers are labelled and counted, now and at peak', () => {
  const before = gpu.memory();
  const a = gpu.buffer('a', 100); // rounded up to 112
  const b = gpu.buffer('b', 16);
  expect(gpu.memory().bytesNow - before.bytesNow).toBe(128);
  gpu.free(a);
  expect(gpu.memory().bytesNow - before.bytesNow).toBe(16);
  expect(gpu.memory().bytesPeak - before.bytesNow).toBeGreaterThanOrEqual(128);
  expect(a.label).toBe('a');
  gpu.free(b);
});

test('upload and read round-trip, with an element offset', async () => {
  const data = Float32Array.from({ length: 37 }, (_, i) => i * 0.5 - 3);
  const buf = gpu.upload('roundtrip', data);
  expect(Array.from(await gpu.readF32(buf))).toEqual(Array.from(data).concat([0, 0, 0]).slice(0, 40));
  expect(Array.from(await gpu.readF32(buf, 5, 3))).toEqual([data[5], data[6], data[7]]);
  gpu.free(buf);
});

test('templating replaces constants and keeps one //#if branch, line numbers intact', () => {
  const src =
    'const TM: u32 = 4u;\n//#if VEC\nalias T = vec4<f32>;\n//#else\nalias T = f32;\n//#endif\nconst S: f32 = 1.0;';
  const out = specialise('x', src, { TM: 8, VEC: false, S: 2 });
  expect(out.split('\n')).toEqual(['const TM: u32 = 8u;', '', '', '', 'alias T = f32;', '', 'const S: f32 = 2.0;']);
  expect(() => specialise('x', src, { TM: 8, VEC: true, S: 1, NOPE: 1 })).toThrow(/NOPE/);
});

test('a WGSL error names the shader file and line', async () => {
  const dir = await import('node:fs').then((fs) => fs.mkdtempSync('/tmp/hlm-wgsl-'));
  const { writeFileSync } = await import('node:fs');
  writeFileSync(`${dir}/broken.wgsl`, '@compute @workgroup_size(1)\nfn main() {\n  let x: f32 = y;\n}\n');
  process.env.HLM_WGSL_DIR = dir;
  try {
    await expect(gpu.pipeline('broken')).rejects.toThrow(ShaderCompileError);
    await expect(gpu.pipeline('broken')).rejects.toThrow(/broken\.wgsl:3:16: error: unresolved value 'y'/);
  } finally {
    delete process.env.HLM_WGSL_DIR;
  }
});

test('a lost device is reported, not hung on', async () => {
  const { Gpu } = await import('../src/gpu/device.js');
  const { DeviceLostError } = await import('../src/errors.js');
  const other = await Gpu.open('auto');
  const buf = other.upload('doomed', new Float32Array(8));
  other.device.destroy(); // as a driver reset would, behind the runtime's back
  await other.device.lost;
  await expect(other.readF32(buf)).rejects.toThrow(DeviceLostError);
  expect(() => other.buffer('after', 16)).toThrow(/device lost/);
  other.destroy();
});
