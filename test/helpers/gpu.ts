// One device per test file: open in beforeAll, destroy in afterAll. scripts/test.mjs sets
// EGL_PLATFORM before jest starts, since jest's sandboxed process.env never reaches dawn.node.
import { Gpu } from '../../src/gpu/device.js';

export async function openTestGpu(): Promise<Gpu> {
  return Gpu.open((process.env.HLM_TEST_DEVICE as string | undefined) ?? 'auto');
}
