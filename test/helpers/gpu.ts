// One device per test file: open in beforeAll, destroy in afterAll. scripts/test.mjs sets
// EGL_PLATFORM before jest starts, since jest's sandboxed process.env never reaches dawn.node.
import { Gpu } from '../../src/gpu/device.js';

export async function openTestGpu(): Promise<Gpu> {
  return Gpu.open((process.env.HLM_TEST_DEVICE as string | undefined) ?? 'auto');
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
