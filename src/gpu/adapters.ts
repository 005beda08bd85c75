// Finding adapters. WebGPU hands out one adapter per request, so we probe each backend
// Dawn can drive on this platform, in the order `--device auto` prefers them:
//   1. a hardware adapter (Vulkan / Metal / D3D12, high-performance),
//   2. Mesa's llvmpipe through Dawn's OpenGL backend (EGL surfaceless, compatibility level),
//   3. Mesa's lavapipe through Vulkan (Mesa 24 or newer; Debian 12's Mesa 22 is refused by Dawn),
//   4. SwiftShader through Vulkan, when a SwiftShader ICD is installed (Debian's chromium).
import { existsSync } from 'node:fs';
import { create, globals } from 'webgpu';
import { ensureRuntimeDir } from '../util/runtime-dir.js';

// GPUBufferUsage, GPUMapMode and friends are globals in browsers; dawn.node exports them.
Object.assign(globalThis, globals);

export type Backend = 'vulkan' | 'metal' | 'd3d12' | 'opengl';
export type AdapterKind = 'hardware' | 'software';

export interface AdapterSummary {
  backend: Backend;
  kind: AdapterKind;
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  featureLevel: 'core' | 'compatibility';
  features: string[];
  limits: Record<string, number>;
  subgroupMatrixConfigs: unknown[];
  /** The adapter's subgroup sizes (0 where Dawn does not say): the subgroup-matrix kernel needs them equal. */
  subgroupMinSize: number;
  subgroupMaxSize: number;
  /** The WGSL language features of the instance the adapter came from (e.g. read-only storage textures). */
  wgslFeatures: string[];
}

export interface Candidate {
  summary: AdapterSummary;
  adapter: GPUAdapter;
  /** dawn.node instance options the adapter was found with (toggles included). */
  options: string[];
}

export interface ProbeResult {
  probe: string;
  candidate?: Candidate;
  reason?: string;
}

const SWIFTSHADER_ICDS = [
  '/usr/lib/chromium/vk_swiftshader_icd.json',
  '/usr/lib/x86_64-linux-gnu/vk_swiftshader_icd.json',
];
const SOFTWARE = /llvmpipe|softpipe|swiftshader|lavapipe|software/i;

function vulkanLoaderPresent(): boolean {
  if (process.platform !== 'linux') return true;
  const dirs = [
    ...(process.env.LD_LIBRARY_PATH ?? '').split(':').filter(Boolean),
    '/usr/lib/x86_64-linux-gnu',
    '/usr/lib/aarch64-linux-gnu',
    '/usr/lib64',
    '/usr/lib',
    '/usr/local/lib',
  ];
  return dirs.some((d) => existsSync(`${d}/libvulkan.so.1`));
}

export function experimentalEnabled(): boolean {
  return /subgroup-matrix/.test(process.env.HLM_EXPERIMENTAL ?? '');
}

function toggles(backend: Backend): string[] {
  const enable: string[] = [];
  if (backend === 'vulkan') enable.push('vulkan_enable_f16_on_nvidia');
  if (experimentalEnabled()) enable.push('allow_unsafe_apis');
  const opts = [`backend=${backend}`];
  if (enable.length) opts.push(`enable-dawn-features=${enable.join(',')}`);
  // Raw timestamps: Dawn rounds them to 100 µs by default to blunt timing attacks.
  opts.push('disable-dawn-features=timestamp_quantization');
  return opts;
}

function summarise(
  adapter: GPUAdapter,
  backend: Backend,
  featureLevel: 'core' | 'compatibility',
  wgslFeatures: string[],
): AdapterSummary {
  const info = adapter.info as GPUAdapterInfo & {
    subgroupMatrixConfigs?: unknown[];
    subgroupMinSize?: number;
    subgroupMaxSize?: number;
  };
  const limits: Record<string, number> = {};
  for (const key in adapter.limits) {
    const v = (adapter.limits as unknown as Record<string, unknown>)[key];
    if (typeof v === 'number') limits[key] = v;
  }
  const text = `${info.vendor} ${info.architecture} ${info.device} ${info.description}`;
  return {
    backend,
    kind: SOFTWARE.test(text) ? 'software' : 'hardware',
    vendor: info.vendor,
    architecture: info.architecture,
    device: info.device,
    description: info.description,
    featureLevel,
    features: [...adapter.features].map(String).sort(),
    limits,
    // Dawn's configurations are native objects whose fields are prototype getters, which a spread would drop.
    subgroupMatrixConfigs: [...(info.subgroupMatrixConfigs ?? [])].map((c) => {
      const { componentType, resultComponentType, M, N, K } = c as Record<string, unknown>;
      return { componentType, resultComponentType, M, N, K };
    }),
    subgroupMinSize: info.subgroupMinSize ?? 0,
    subgroupMaxSize: info.subgroupMaxSize ?? 0,
    wgslFeatures,
  };
}

// dawn.node frees its native instance when the JS object is collected, and adapters and
// devices made from it then use freed memory (seen as futex/mutex aborts mid-dispatch).
// Instances therefore live as long as the process.
const instances: GPU[] = [];

async function request(
  backend: Backend,
  req: GPURequestAdapterOptions,
  featureLevel: 'core' | 'compatibility',
): Promise<Candidate | undefined> {
  const options = toggles(backend);
  ensureRuntimeDir(); // before the drivers load: Mesa's Vulkan drivers complain without one
  const gpu = create(options);
  instances.push(gpu);
  const adapter = await gpu.requestAdapter({ ...req, featureLevel } as GPURequestAdapterOptions);
  if (!adapter) return undefined;
  const wgsl = [...(gpu.wgslLanguageFeatures ?? [])].map(String).sort();
  return { summary: summarise(adapter, backend, featureLevel, wgsl), adapter, options };
}

async function probeHardware(): Promise<ProbeResult> {
  const backend: Backend = process.platform === 'darwin' ? 'metal' : process.platform === 'win32' ? 'd3d12' : 'vulkan';
  const probe = `${backend} (hardware)`;
  if (backend === 'vulkan' && !vulkanLoaderPresent())
    return { probe, reason: 'the Vulkan loader (libvulkan.so.1) is not installed' };
  const c = await request(backend, { powerPreference: 'high-performance' }, 'core');
  if (!c) return { probe, reason: `Dawn found no ${backend} adapter` };
  if (c.summary.kind === 'software')
    return { probe, reason: `only a software ${backend} adapter (${c.summary.device || c.summary.description})` };
  return { probe, candidate: c };
}

async function probeOpenGL(): Promise<ProbeResult> {
  const probe = 'opengl (Mesa llvmpipe, EGL surfaceless)';
  // Must be in the environment before Dawn opens EGL; without it Mesa looks for a display.
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const c = await request('opengl', {}, 'compatibility');
  if (!c) return { probe, reason: 'no OpenGL adapter (install libegl1 libegl-mesa0 libgl1-mesa-dri)' };
  return { probe, candidate: c };
}

async function probeLavapipe(): Promise<ProbeResult> {
  const probe = 'vulkan (Mesa lavapipe)';
  if (!vulkanLoaderPresent()) return { probe, reason: 'the Vulkan loader (libvulkan.so.1) is not installed' };
  const c = await request('vulkan', {}, 'core');
  if (!c || !/llvmpipe|lavapipe/i.test(adapterName(c.summary)))
    return { probe, reason: 'no lavapipe Vulkan adapter (Mesa 24 or newer: mesa-vulkan-drivers)' };
  return { probe, candidate: c };
}

async function probeSwiftShader(): Promise<ProbeResult> {
  const probe = 'vulkan (SwiftShader)';
  const icd = SWIFTSHADER_ICDS.find((p) => existsSync(p));
  if (!icd) return { probe, reason: 'no SwiftShader Vulkan ICD (Debian package chromium provides one)' };
  if (!vulkanLoaderPresent()) return { probe, reason: 'the Vulkan loader (libvulkan.so.1) is not installed' };
  // The loader reads the ICD list when the instance is made; put the caller's back after, so that later Vulkan
  // probes (and child processes) still see the installed drivers (lavapipe).
  const before = process.env.VK_ICD_FILENAMES;
  process.env.VK_ICD_FILENAMES = icd;
  let c: Candidate | undefined;
  try {
    c = await request('vulkan', { forceFallbackAdapter: true }, 'core');
  } finally {
    if (before === undefined) delete process.env.VK_ICD_FILENAMES;
    else process.env.VK_ICD_FILENAMES = before;
  }
  if (!c) return { probe, reason: `Dawn did not accept the SwiftShader ICD at ${icd}` };
  c.summary.kind = 'software';
  return { probe, candidate: c };
}

/** Every backend probed, in `auto`'s order of preference, with why a probe found nothing. */
export async function probeAdapters(opts: { hardware?: boolean; all?: boolean } = {}): Promise<ProbeResult[]> {
  const results: ProbeResult[] = [];
  if (opts.hardware !== false) results.push(await probeHardware());
  results.push(await probeOpenGL());
  // lavapipe (Mesa 24 or newer) has shader-f16 and subgroups, but its matmul ran at half llvmpipe's speed through
  // OpenGL (16 against 31 GFLOP/s at 512³, Mesa 25.0.7): named with --device vulkan, or when llvmpipe is missing.
  // SwiftShader is ~6x slower than llvmpipe: looked for last.
  if (opts.all || !results.some((r) => r.candidate)) results.push(await probeLavapipe());
  if (opts.all || !results.some((r) => r.candidate)) results.push(await probeSwiftShader());
  return results;
}

export function adapterName(s: AdapterSummary): string {
  return [s.vendor, s.architecture, s.device, s.description].filter(Boolean).join(' ').trim();
}
