// One device per test file: open in beforeAll, destroy in afterAll. scripts/test.mjs sets
// EGL_PLATFORM before jest starts, since jest's sandboxed process.env never reaches dawn.node.
import { Gpu, type F16Kernels } from '../../src/gpu/device.js';

export async function openTestGpu(): Promise<Gpu> {
  return Gpu.open((process.env.HLM_TEST_DEVICE as string | undefined) ?? 'auto');
}

/**
 * The adapter that runs the shader-f16 kernels in tests: Mesa's lavapipe through Vulkan (Mesa 24 or newer, which
 * .ci/run installs from bookworm-backports; llvmpipe through OpenGL has no shader-f16), or HLM_TEST_F16_DEVICE.
 */
export const SHADER_F16_DEVICE = process.env.HLM_TEST_F16_DEVICE ?? 'vulkan mesa';

/** The f16 kernel paths every f16 test runs: [path, device]. */
export const F16_PATHS: [F16Kernels, string][] = [
  ['packed-f16', process.env.HLM_TEST_DEVICE ?? 'auto'],
  ['shader-f16', SHADER_F16_DEVICE],
];

/** A device whose kernels read f16 tensors the given way; fails (never skips) where the adapter cannot. */
export async function openF16TestGpu(kernels: F16Kernels, device: string): Promise<Gpu> {
  const gpu = await Gpu.open(device);
  if (kernels === 'shader-f16' && !gpu.features.has('shader-f16')) {
    gpu.destroy();
    throw new Error(
      `${gpu.name} has no shader-f16 feature: the shader-f16 kernels need lavapipe from Mesa 24 or newer`,
    );
  }
  gpu.f16Kernels = kernels;
  return gpu;
}

/** Run `f` as on an adapter of this kind (which decides default kernels and plans), whatever the test device is. */
export async function asAdapterKind<T>(gpu: Gpu, kind: 'software' | 'hardware', f: () => Promise<T>): Promise<T> {
  const adapter = gpu.adapter as { kind: string };
  const was = adapter.kind;
  adapter.kind = kind;
  try {
    return await f();
  } finally {
    adapter.kind = was;
  }
}

/**
 * In a describe block: its tests run on a device whose f16 kernels are `kernels` (openF16TestGpu), held in the test
 * file's own variable through `get` and `set`; the file's device is put back after the block.
 */
export function useF16TestGpu(kernels: F16Kernels, device: string, get: () => Gpu, set: (gpu: Gpu) => void): void {
  let saved: Gpu;
  beforeAll(async () => {
    saved = get();
    set(await openF16TestGpu(kernels, device));
  });
  afterAll(() => {
    get()?.destroy();
    set(saved);
  });
}
