import { openTestGpu } from './helpers/gpu.js';
import type { Gpu } from '../src/gpu/device.js';
import { encodeParams, shaderInterface, shaderText, specialise } from '../src/gpu/shaders.js';
import { HlmError, ShaderCompileError } from '../src/errors.js';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';

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
  const out = specialise(shaderText('x', src), { TM: 8, VEC: false, S: 2 });
  expect(out.code.split('\n')).toEqual([
    'const TM: u32 = 8u;',
    '',
    '',
    '',
    'alias T = f32;',
    '',
    'const S: f32 = 2.0;',
  ]);
  expect(() => specialise(shaderText('x', src), { TM: 8, VEC: true, S: 1, NOPE: 1 })).toThrow(/NOPE/);
});

test('a shader interface is read from its code; parameters are packed by name and checked', () => {
  const iface = shaderInterface(
    shaderText(
      'k',
      [
        'struct Params {',
        '  n: u32, off: i32, // a comment',
        '  alpha: f32,',
        '}',
        '@group(0) @binding(0) var<storage, read_write> out: array<f32>;',
        '@group(0) @binding(2) var<storage, read> x: array<f32>;',
        '@group(0) @binding(3) var<uniform> p: Params;',
        'const WG: u32 = 64u;',
        'const TWICE: u32 = WG * 2u;',
      ].join('\n'),
    ),
  );
  expect(iface.params).toEqual([
    { name: 'n', type: 'u32' },
    { name: 'off', type: 'i32' },
    { name: 'alpha', type: 'f32' },
  ]);
  expect(iface.uniform).toBe(3);
  expect([...iface.bindings]).toEqual([
    ['out', { binding: 0, writable: true }],
    ['x', { binding: 2, writable: false }],
  ]);
  expect(iface.constants.get('WG')).toBe(64);
  expect(iface.constants.has('TWICE')).toBe(false); // not a literal
  const words = encodeParams(iface, { alpha: 0.5, n: 7, off: -2 });
  expect(words.byteLength).toBe(16); // three 4-byte fields, padded to 16
  const view = new DataView(words.buffer);
  expect([0, 4, 8, 12].map((o) => (o === 4 ? view.getInt32(o, true) : view.getUint32(o, true)))).toEqual([
    7,
    -2,
    new Uint32Array(Float32Array.of(0.5).buffer)[0],
    0,
  ]);
  const bad = (values: Record<string, number>) => () => encodeParams(iface, values);
  expect(bad({ n: 7, off: 0 })).toThrow(/k\.wgsl: parameter alpha \(f32\) is missing/);
  expect(bad({ n: 7, off: 0, alpha: 1, beta: 2 })).toThrow(/k\.wgsl: struct Params has no field beta/);
  expect(bad({ n: -1, off: 0, alpha: 1 })).toThrow(/k\.wgsl: parameter n is u32, which cannot hold -1/);
  expect(bad({ n: 1.5, off: 0, alpha: 1 })).toThrow(/parameter n is u32, which cannot hold 1\.5/);
  expect(bad({ n: 2 ** 32, off: 0, alpha: 1 })).toThrow(/parameter n is u32/);
  expect(bad({ n: 1, off: 2 ** 31, alpha: 1 })).toThrow(/parameter off is i32/);
  expect(() => shaderInterface(shaderText('v', 'struct Params { a: vec2<f32> }'))).toThrow(
    /v\.wgsl: struct Params field "a: vec2<f32>": parameters are u32, i32 or f32 scalars/,
  );
});

test('a dispatch binds by name and refuses missing or unknown bindings and parameters', async () => {
  const kernel = await gpu.kernel('add', { IN_PLACE: true });
  expect(kernel.constant('WG')).toBe(256); // from lib/elementwise.wgsl
  const out = gpu.buffer('out', 64);
  const b = gpu.buffer('b', 64);
  const params = { rows: 2, cols: 8, sbr: 8, sbc: 1, offOut: 0, offA: 0, offB: 0, alpha: 1 };
  const d = gpu.dispatch('add', kernel, { bind: { out, b }, params, groups: [1] });
  expect(d.owned).toEqual([d.uniform]);
  gpu.release(d);
  expect(() => gpu.dispatch('add', kernel, { bind: { out }, params, groups: [1] })).toThrow(
    /add: src\/wgsl\/add\.wgsl binds out, b; b not given/,
  );
  expect(() => gpu.dispatch('add', kernel, { bind: { out, b, a: b }, params, groups: [1] })).toThrow(/it has no a/);
  expect(() =>
    gpu.dispatch('add', kernel, { bind: { out, b }, params: { ...params, alpha: undefined! }, groups: [1] }),
  ).toThrow(/src\/wgsl\/add\.wgsl: parameter alpha \(f32\) is missing/);
  expect(() => kernel.constant('NOPE')).toThrow(HlmError);
  gpu.free(out, b);
});

test('submits and dispatches are counted; clears and empty grids are not dispatches', async () => {
  const kernel = await gpu.kernel('add', { IN_PLACE: true });
  const out = gpu.buffer('out', 64);
  const b = gpu.buffer('b', 64);
  const params = { rows: 2, cols: 8, sbr: 8, sbc: 1, offOut: 0, offA: 0, offB: 0, alpha: 1 };
  const d = gpu.dispatch('add', kernel, { bind: { out, b }, params, groups: [1] });
  const none = gpu.dispatch('add nothing', kernel, { bind: { out, b }, params, groups: [0] });
  const before = gpu.counts();
  await gpu.run([d, { clear: out }, d, none]);
  expect(gpu.counts()).toEqual({ submits: before.submits + 1, dispatches: before.dispatches + 2 });
  gpu.release(d, none);
  gpu.free(out, b);
});

describe('shader errors name the file and line', () => {
  const dir = mkdtempSync('/tmp/hlm-wgsl-');
  mkdirSync(`${dir}/lib`);
  const write = (file: string, lines: string[]) => writeFileSync(`${dir}/${file}`, lines.join('\n') + '\n');
  write('broken.wgsl', ['@compute @workgroup_size(1)', 'fn main() {', '  let x: f32 = y;', '}']);
  write('lib/ok.wgsl', ['fn two() -> f32 {', '  return 2.0;', '}']);
  write('lib/bad.wgsl', ['fn three() -> f32 {', '  return zz;', '}']);
  write('lib/open.wgsl', ['//#if FLAG', 'fn four() -> f32 { return 4.0; }']);
  // The include puts three lines where it stands: the error two lines below it is still on line 5.
  write('main_bad.wgsl', [
    '//#include lib/ok.wgsl',
    '@compute @workgroup_size(1)',
    'fn main() {',
    '  let a = two();',
    '  let b: u32 = a;',
    '}',
  ]);
  write('lib_bad.wgsl', [
    '//#include lib/ok.wgsl',
    '//#include lib/bad.wgsl',
    '@compute @workgroup_size(1)',
    'fn main() {}',
  ]);
  write('lib_open.wgsl', ['//#include lib/open.wgsl', '@compute @workgroup_size(1)', 'fn main() {}']);
  write('no_lib.wgsl', ['// a shader', '//#include lib/nope.wgsl']);
  const compile = async (name: string, constants = {}) => {
    process.env.HLM_WGSL_DIR = dir;
    try {
      await gpu.kernel(name, constants);
    } finally {
      delete process.env.HLM_WGSL_DIR;
    }
  };

  test('in the shader itself', async () => {
    await expect(compile('broken')).rejects.toThrow(ShaderCompileError);
    await expect(compile('broken')).rejects.toThrow(/broken\.wgsl:3:16: error: unresolved value 'y'/);
  });

  test('in the shader, below an include: its own line numbers', async () => {
    await expect(compile('main_bad')).rejects.toThrow(/main_bad\.wgsl:5:\d+: error: .*\n {4}let b: u32 = a;/);
  });

  test('in an included file: that file and its line', async () => {
    await expect(compile('lib_bad')).rejects.toThrow(/lib\/bad\.wgsl:2:10: error: unresolved value 'zz'/);
    await expect(compile('lib_open', { FLAG: true })).rejects.toThrow(/lib\/open\.wgsl:1: \/\/#if without \/\/#endif/);
    await expect(compile('no_lib')).rejects.toThrow(/no_lib\.wgsl:2: shader .*lib\/nope\.wgsl not found/);
  });
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
