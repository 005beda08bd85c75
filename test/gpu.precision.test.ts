// The precision paths per adapter: what an adapter supports (features, subgroup-matrix configurations, experimental
// features, subgroup size) and what hlm implements (all four), for synthetic adapters and the real ones here (llvmpipe
// through OpenGL: no shader-f16; lavapipe through Vulkan: shader-f16; Mesa 26's lavapipe with subgroup matrices is
// test/kernels.matmul.subgroup-matrix.test.ts's).
import { probeAdapters, type AdapterSummary } from '../src/gpu/adapters.js';
import { Gpu } from '../src/gpu/device.js';
import { PRECISION_PATHS, precisionPathLine, precisionPaths, type PrecisionPath } from '../src/gpu/precision.js';
import { hlm } from './helpers/cli.js';

type Summary = Pick<AdapterSummary, 'features' | 'subgroupMatrixConfigs' | 'subgroupMinSize' | 'subgroupMaxSize'>;
const FIXED = { subgroupMinSize: 8, subgroupMaxSize: 8 };
const F16_MATRIX = { componentType: 'f16', resultComponentType: 'f32', M: 8, N: 8, K: 8 };
const I8_MATRIX = { componentType: 'i8', resultComponentType: 'i32', M: 8, N: 8, K: 32 };

const byPath = (paths: PrecisionPath[]) => Object.fromEntries(paths.map((p) => [p.path, p]));
const flags = (paths: PrecisionPath[]) =>
  Object.fromEntries(paths.map((p) => [p.path, [p.supported, p.implemented, p.usable]]));

test('a bare adapter: f32 and packed-f16 only', () => {
  const paths = precisionPaths({ features: [], subgroupMatrixConfigs: [], ...FIXED }, { experimental: true });
  expect(paths.map((p) => p.path)).toEqual([...PRECISION_PATHS]);
  expect(flags(paths)).toEqual({
    f32: [true, true, true],
    'packed-f16': [true, true, true],
    'shader-f16': [false, true, false],
    'subgroup-matrix': [false, true, false],
  });
  expect(byPath(paths)['shader-f16'].reason).toMatch(/lacks the shader-f16 feature/);
  expect(byPath(paths)['subgroup-matrix'].reason).toMatch(/no subgroup-matrix configuration with f16 components/);
});

test('shader-f16: usable with the feature', () => {
  const s: Summary = { features: ['shader-f16', 'subgroups'], subgroupMatrixConfigs: [], ...FIXED };
  const p = byPath(precisionPaths(s, { experimental: false }));
  expect([p['shader-f16'].supported, p['shader-f16'].implemented, p['shader-f16'].usable]).toEqual([true, true, true]);
  expect(precisionPathLine(p['shader-f16'])).toMatch(
    /^shader-f16 +adapter yes +hlm yes +the adapter has the shader-f16/,
  );
  expect(p['subgroup-matrix'].supported).toBe(false);
});

const NEEDS = 'f16 configurations with f32 results, a fixed subgroup size, shader-f16 and experimental features';
test(`subgroup-matrix needs ${NEEDS}, each named when missing`, () => {
  const all: Summary = { features: ['shader-f16'], subgroupMatrixConfigs: [I8_MATRIX, F16_MATRIX], ...FIXED };
  const ok = byPath(precisionPaths(all, { experimental: true }))['subgroup-matrix'];
  expect([ok.supported, ok.implemented, ok.usable]).toEqual([true, true, true]);
  expect(ok.reason).toBe('f16 configurations 8x8x8 f16->f32');
  const cases: [Summary, boolean, RegExp][] = [
    [{ ...all, subgroupMatrixConfigs: [I8_MATRIX] }, true, /^no subgroup-matrix configuration with f16 components$/],
    [
      { ...all, subgroupMatrixConfigs: [{ ...F16_MATRIX, resultComponentType: 'f16' }] },
      true,
      /^no f16 configuration with f32 results$/,
    ],
    [
      { ...all, subgroupMinSize: 32, subgroupMaxSize: 64 },
      true,
      /^subgroup size not fixed \(32 to 64\): hlm's kernel needs a workgroup to be exactly one subgroup$/,
    ],
    [{ ...all, features: [] }, true, /^no shader-f16 feature$/],
    [all, false, /^experimental features are off: HLM_EXPERIMENTAL=subgroup-matrix turns them on$/],
  ];
  for (const [s, experimental, reason] of cases) {
    const p = byPath(precisionPaths(s, { experimental }))['subgroup-matrix'];
    expect(p.supported).toBe(false);
    expect(p.reason).toMatch(reason);
  }
});

test('the real adapters (llvmpipe and lavapipe here): their paths; hlm devices prints and returns them', async () => {
  const found = (await probeAdapters({ all: true })).flatMap((p) => (p.candidate ? [p.candidate.summary] : []));
  expect(found.length).toBeGreaterThan(0);
  for (const s of found) {
    const p = byPath(precisionPaths(s));
    expect(p.f32.usable && p['packed-f16'].usable).toBe(true);
    expect(p['shader-f16'].supported).toBe(s.features.includes('shader-f16'));
    expect(p['shader-f16'].usable).toBe(s.features.includes('shader-f16'));
    // The system's Mesa (25) has no subgroup matrices; Mesa 26's lavapipe is tested in its own phase.
    expect(p['subgroup-matrix'].usable).toBe(false);
  }
  const gl = found.find((s) => s.backend === 'opengl');
  const lavapipe = found.find((s) => s.backend === 'vulkan' && /llvmpipe/.test(s.device));
  expect(gl && flags(precisionPaths(gl))['shader-f16']).toEqual([false, true, false]);
  expect(lavapipe && flags(precisionPaths(lavapipe))['shader-f16']).toEqual([true, true, true]);

  const json = hlm(['devices', '--json']);
  expect(json.status).toBe(0);
  const adapters = JSON.parse(json.stdout).adapters as { precision: PrecisionPath[] }[];
  for (const a of adapters) expect(a.precision.map((p) => p.path)).toEqual([...PRECISION_PATHS]);
  const text = hlm(['devices']);
  expect(text.stdout).toMatch(/precision paths:\n +f32 +adapter yes +hlm yes .*\n +packed-f16 +adapter yes +hlm yes/);
  expect(text.stdout).toMatch(/ +shader-f16 +adapter no +hlm yes +the adapter lacks the shader-f16 feature\n/);
  expect(text.stdout).toMatch(/ +shader-f16 +adapter yes +hlm yes +the adapter has the shader-f16 feature\n/);
}, 60_000);

test('HLM_F16_KERNELS names a path the device has, or the device refuses to open', async () => {
  const was = process.env.HLM_F16_KERNELS;
  try {
    process.env.HLM_F16_KERNELS = 'tensor-cores';
    await expect(Gpu.open('opengl')).rejects.toThrow(
      /HLM_F16_KERNELS=tensor-cores: expected subgroup-matrix, shader-f16, packed-f16/,
    );
    process.env.HLM_F16_KERNELS = 'subgroup-matrix';
    await expect(Gpu.open('opengl')).rejects.toThrow(
      /HLM_F16_KERNELS=subgroup-matrix: .*llvmpipe.* has only packed-f16/,
    );
    process.env.HLM_F16_KERNELS = 'packed-f16';
    const gpu = await Gpu.open('vulkan mesa');
    expect([gpu.f16Kernels, gpu.nativeF16]).toEqual(['packed-f16', false]);
    gpu.destroy();
  } finally {
    if (was === undefined) delete process.env.HLM_F16_KERNELS;
    else process.env.HLM_F16_KERNELS = was;
  }
});
