// The GPU runtime every command and kernel uses: one device, labelled and counted buffers,
// a cache of compiled kernels keyed by shader and specialisation, and batches of dispatches recorded
// into one command encoder and one submit. Only what is explicitly read comes back.
import { adapterName, probeAdapters, type AdapterSummary, type Candidate, type ProbeResult } from './adapters.js';
import {
  encodeParams,
  loadShader,
  origin,
  shaderInterface,
  specialise,
  type ShaderConstants,
  type ShaderInterface,
} from './shaders.js';
import { DeviceLostError, GpuValidationError, HlmError, NoAdapterError, ShaderCompileError } from '../errors.js';
import { GpuScope } from './scope.js';
import { precisionPaths } from './precision.js';
import { log } from '../log.js';

export type DeviceChoice = 'auto' | 'gpu' | 'cpu' | (string & {});

/** A compiled, specialised shader and its interface (src/gpu/shaders.ts), from Gpu.kernel. */
export class Kernel {
  constructor(
    readonly pipeline: GPUComputePipeline,
    readonly iface: ShaderInterface,
  ) {}

  /** A module-scope constant of the specialised shader, e.g. its workgroup size WG. */
  constant(name: string): number {
    const v = this.iface.constants.get(name);
    if (typeof v !== 'number') throw new HlmError(`${this.iface.file}: no numeric literal constant ${name}`);
    return v;
  }

  /** The bytes of the shader's `struct Params` for parameters given by name (all of them, and no others). */
  params(values: Record<string, number>): Uint32Array {
    return encodeParams(this.iface, values);
  }
}

/** What a dispatch binds and how many workgroups it runs. */
export interface DispatchSpec {
  /** The shader's storage buffers by variable name: each a whole buffer or a byte range of one. */
  bind: Record<string, Binding>;
  /** Its `struct Params` by field name, written into a uniform buffer the dispatch owns. */
  params?: Record<string, number>;
  groups: [number, number?, number?];
  /** More buffers that exist only for this dispatch (scratch): freed with it. */
  owned?: GPUBuffer[];
  /** Copies into the textures it reads, recorded just before it. */
  uploads?: TextureUpload[];
}

/**
 * Rows of a buffer copied into an rgba32float texture from texel (0, 0): `height` rows of `width` texels, row r
 * from byte offset + r·bytesPerRow (WebGPU: offset a multiple of 16, bytesPerRow of 256 when height > 1).
 */
export interface TextureUpload {
  from: GPUBuffer;
  offset: number;
  bytesPerRow: number;
  to: GPUTexture;
  width: number;
  height: number;
}

/** One compute dispatch, ready to record: kernels build these once and reuse them every step. */
export interface Dispatch {
  label: string;
  kernel: Kernel;
  pipeline: GPUComputePipeline;
  bindGroup: GPUBindGroup;
  workgroups: [number, number, number];
  /** The uniform holding its parameters (rewritten by Gpu.setParams). */
  uniform?: GPUBuffer;
  /** Buffers that exist only for this dispatch (its parameters, scratch): freed with it. */
  owned: GPUBuffer[];
  /** Texture copies recorded just before the dispatch (software matmul operands). */
  uploads?: TextureUpload[];
}

/** Zero a byte range of a buffer between dispatches (gradients at the start of a step). */
export interface Clear {
  clear: GPUBuffer;
  offset?: number;
  size?: number;
}

/** Copy bytes between buffers between dispatches (e.g. a step's loss into a history ring). */
export interface Copy {
  copy: { from: GPUBuffer; fromOffset: number; to: GPUBuffer; toOffset: number; size: number };
}

export type Command = Dispatch | Clear | Copy;

/**
 * What submit needs of a timestamp profiler (GpuProfiler in timing.ts implements it; declared
 * here so that the runtime does not depend on the profiler).
 */
export interface DispatchProfiler {
  /** Timestamp writes for the compute pass that will hold `d`, or undefined when out of slots. */
  writes(d: Dispatch): GPUComputePassTimestampWrites | undefined;
  /** Resolve the queries written so far (before the encoder finishes). */
  resolve(enc: GPUCommandEncoder): void;
}

/** A binding: a whole buffer, a byte range of one, or a texture (for a `texture_storage_2d` variable). */
export type Binding = GPUBuffer | { buffer: GPUBuffer; offset?: number; size?: number } | { texture: GPUTexture };

const OPTIONAL_FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'];
const EXPERIMENTAL_FEATURES = ['chromium-experimental-subgroup-matrix'];

/** Pick an adapter for --device: auto | gpu | cpu | a substring of the adapter's name. */
export async function selectAdapter(choice: DeviceChoice): Promise<{ chosen: Candidate; probes: ProbeResult[] }> {
  const probes = await probeAdapters({ hardware: choice !== 'cpu', all: !['auto', 'gpu', 'cpu'].includes(choice) });
  const found = probes.flatMap((p) => (p.candidate ? [p.candidate] : []));
  const why = () =>
    probes.map((p) => `  ${p.probe}: ${p.candidate ? adapterName(p.candidate.summary) : p.reason}`).join('\n');
  let chosen: Candidate | undefined;
  if (choice === 'auto') chosen = found[0];
  else if (choice === 'gpu') chosen = found.find((c) => c.summary.kind === 'hardware');
  else if (choice === 'cpu') chosen = found.find((c) => c.summary.kind === 'software');
  else {
    const needle = choice.toLowerCase();
    chosen = found.find((c) => `${c.summary.backend} ${adapterName(c.summary)}`.toLowerCase().includes(needle));
  }
  if (!chosen) {
    const what =
      choice === 'gpu'
        ? 'no hardware GPU adapter'
        : choice === 'cpu'
          ? 'no software adapter'
          : choice === 'auto'
            ? 'no WebGPU adapter at all'
            : `no adapter matches "${choice}"`;
    throw new NoAdapterError(`--device ${choice}: ${what}. Probed:\n${why()}`);
  }
  return { chosen, probes };
}

export interface MemoryStats {
  bytesNow: number;
  bytesPeak: number;
  buffers: number;
  /** The part of bytesNow in shared scratch (gpu.shared, gpu.sharedTexture), which lives until the device closes. */
  sharedBytes: number;
}

/** What has been submitted since the device opened: command buffers, and compute dispatches recorded in them. */
export interface SubmitCounts {
  submits: number;
  dispatches: number;
}

/** The ways kernels compute with f16 tensors (Gpu.f16Kernels), fastest first. */
export const F16_KERNELS = ['subgroup-matrix', 'shader-f16', 'packed-f16'] as const;
export type F16Kernels = (typeof F16_KERNELS)[number];

export class Gpu {
  readonly features: Set<string>;
  readonly limits: Record<string, number>;
  private bytesNow = 0;
  private bytesPeak = 0;
  private submitted: SubmitCounts = { submits: 0, dispatches: 0 };
  private sharedBytes = 0;
  private live = new Map<GPUBuffer, { label: string; size: number }>();
  private kernels = new Map<string, Promise<Kernel>>();
  private sharedBuffers = new Map<string, GPUBuffer>();
  private textures = new Map<string, GPUTexture>();
  private lostReason: string | undefined;
  private destroyed = false;
  /** When set, submit times every dispatch with timestamp queries (src/gpu/timing.ts); off by default. */
  profiler?: DispatchProfiler;
  /**
   * How kernels compute with f16 tensors (the mixed-precision copies, dtype 'f16'; the layout is the same either
   * way): WGSL's f16 type where the device has shader-f16 (`enable f16`: one load a vec4 of halves, no unpacking),
   * else halves unpacked from u32 words by core WGSL's unpack2x16float; and where the device has subgroup matrices
   * (precisionPaths' subgroup-matrix), products of two f16 operands on them (src/kernels/matmul-subgroup.ts), the
   * other kernels as shader-f16. HLM_F16_KERNELS names a slower path to compare them; tests may set it; the
   * subgroup-matrix product falls back to shader-f16 (with a log line) where its first use fails its check.
   */
  f16Kernels: F16Kernels;
  /**
   * Whether kernels may read read-only storage textures (`texture_storage_2d<rgba32float, read>`): the WGSL language
   * feature and room for two of them in a compute shader. On llvmpipe such a load costs about half a sampled
   * texture's (no per-lane mip-level arithmetic), so matmul's register kernel reads its operands through them.
   */
  readonly storageTextureReads: boolean;

  private constructor(
    readonly device: GPUDevice,
    readonly adapter: AdapterSummary,
  ) {
    this.features = new Set([...device.features].map(String));
    this.limits = adapter.limits;
    this.storageTextureReads =
      adapter.wgslFeatures.includes('readonly_and_readwrite_storage_textures') &&
      (this.limits.maxStorageTexturesPerShaderStage ?? 0) >= 2;
    const asked = process.env.HLM_F16_KERNELS;
    if (asked !== undefined && !(F16_KERNELS as readonly string[]).includes(asked))
      throw new HlmError(`HLM_F16_KERNELS=${asked}: expected ${F16_KERNELS.join(', ')}`);
    const native = this.features.has('shader-f16');
    const matrices =
      native &&
      this.features.has('chromium-experimental-subgroup-matrix') &&
      precisionPaths(adapter).some((p) => p.path === 'subgroup-matrix' && p.usable);
    const available = F16_KERNELS.filter((k) => k === 'packed-f16' || (k === 'shader-f16' ? native : matrices));
    if (asked && !available.includes(asked as F16Kernels))
      throw new HlmError(`HLM_F16_KERNELS=${asked}: ${adapterName(adapter)} has only ${available.join(', ')}`);
    this.f16Kernels = (asked as F16Kernels | undefined) ?? available[0];
    device.lost.then((info) => {
      if (this.destroyed) return;
      this.lostReason = `${info.reason}: ${info.message}`;
      log.error({ reason: info.reason }, `GPU device lost: ${info.message}`);
    });
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      log.error(`uncaptured WebGPU error: ${ev.error.message}`);
    };
  }

  /** Open a device on the chosen adapter with the adapter's own limits and optional features. */
  static async open(choice: DeviceChoice = 'auto'): Promise<Gpu> {
    const { chosen } = await selectAdapter(choice);
    const { adapter, summary } = chosen;
    const wanted = [
      ...OPTIONAL_FEATURES,
      ...(chosen.options.some((o) => o.includes('allow_unsafe_apis')) ? EXPERIMENTAL_FEATURES : []),
    ];
    const requiredFeatures = wanted.filter((f) => adapter.features.has(f)) as GPUFeatureName[];
    // Default limits cap a storage binding at 128 MiB and a workgroup at 256 invocations.
    const device = await adapter.requestDevice({ requiredFeatures, requiredLimits: summary.limits, label: 'hlm' });
    log.debug({ backend: summary.backend, adapter: adapterName(summary), features: requiredFeatures }, 'device opened');
    try {
      return new Gpu(device, summary);
    } catch (e) {
      device.destroy(); // a refused HLM_F16_KERNELS: nothing else holds the device
      throw e;
    }
  }

  /** Whether kernels read f16 tensors through WGSL's f16 type (shader-f16 and subgroup-matrix) or unpack u32 words. */
  get nativeF16(): boolean {
    return this.f16Kernels !== 'packed-f16';
  }

  get name(): string {
    return `${this.adapter.backend}: ${adapterName(this.adapter)}`;
  }

  /** Start a new peak from what is allocated now (to measure one run among several). */
  resetPeak(): void {
    this.bytesPeak = this.bytesNow;
  }

  memory(): MemoryStats {
    return {
      bytesNow: this.bytesNow,
      bytesPeak: this.bytesPeak,
      buffers: this.live.size,
      sharedBytes: this.sharedBytes,
    };
  }

  /** Submits and dispatches so far (a step's are the difference across it). */
  counts(): SubmitCounts {
    return { ...this.submitted };
  }

  private check(): void {
    if (this.lostReason) throw new DeviceLostError(`GPU device lost (${this.lostReason}); the work in flight is gone`);
    if (this.destroyed) throw new HlmError('GPU device already closed');
  }

  /** A storage buffer, rounded up to 16 bytes so vec4 views of it are legal. */
  buffer(
    label: string,
    bytes: number,
    usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
  ): GPUBuffer {
    this.check();
    const size = Math.max(16, Math.ceil(bytes / 16) * 16);
    const max = this.limits.maxBufferSize ?? Infinity;
    if (size > max) throw new HlmError(`buffer "${label}" needs ${size} bytes; this adapter allows ${max}`);
    const buf = this.device.createBuffer({ label, size, usage });
    this.live.set(buf, { label, size });
    this.bytesNow += size;
    this.bytesPeak = Math.max(this.bytesPeak, this.bytesNow);
    return buf;
  }

  /** An ownership scope: buffers and dispatches allocated through it are freed together (src/gpu/scope.ts). */
  scope(name: string): GpuScope {
    return new GpuScope(this, name);
  }

  /**
   * A storage buffer of at least `bytes` shared by every caller that names `name`, for data
   * that lives only from one dispatch to the next (split-K partial products): commands run in
   * order, so one buffer serves every product. A larger request allocates a larger buffer
   * (sizes rounded up to a power of two); the smaller ones stay for the bind groups that hold
   * them, until the device is closed.
   */
  shared(name: string, bytes: number): GPUBuffer {
    const have = this.sharedBuffers.get(name);
    if (have && have.size >= bytes) return have;
    const rounded = Math.min(
      2 ** Math.ceil(Math.log2(Math.max(16, bytes))),
      this.limits.maxStorageBufferBindingSize ?? Infinity,
    );
    const buf = this.buffer(`shared ${name}`, Math.max(bytes, rounded));
    this.sharedBuffers.set(name, buf);
    this.sharedBytes += buf.size;
    return buf;
  }

  /**
   * An rgba32float texture of at least width x height texels, read by kernels as a read-only storage texture,
   * shared by every caller that names `name` (matmul operands copied for a software adapter): like `shared`, one
   * per name and size class (each side rounded up to a power of two), kept until the device is closed and counted
   * in memory().
   */
  sharedTexture(name: string, width: number, height: number): GPUTexture {
    this.check();
    const max = this.limits.maxTextureDimension2D ?? 8192;
    // A row 64 bytes longer than a power of two (when the limit allows): rows a power of two apart map to the same
    // few cache sets, and a SIMD group reading one column of 8 rows (a transposed operand) then evicts itself.
    const w = Math.min(max, 2 ** Math.ceil(Math.log2(Math.max(1, width))) + 4);
    const h = Math.min(max, 2 ** Math.ceil(Math.log2(Math.max(1, height))));
    if (width > w || height > h) throw new HlmError(`texture ${name}: ${width}x${height} texels exceed ${max}`);
    const key = `${name} ${w}x${h}`;
    let t = this.textures.get(key);
    if (!t) {
      t = this.device.createTexture({
        label: key,
        size: [w, h],
        format: 'rgba32float',
        usage: GPUTextureUsage.STORAGE_BINDING | GPUTextureUsage.COPY_DST,
      });
      this.textures.set(key, t);
      this.bytesNow += 16 * w * h;
      this.sharedBytes += 16 * w * h;
      this.bytesPeak = Math.max(this.bytesPeak, this.bytesNow);
    }
    return t;
  }

  /** A storage buffer holding `data`. */
  upload(label: string, data: ArrayBufferView, usage?: number): GPUBuffer {
    const buf = this.buffer(label, data.byteLength, usage);
    this.write(buf, data);
    return buf;
  }

  write(buffer: GPUBuffer, data: ArrayBufferView, byteOffset = 0): void {
    this.check();
    // writeBuffer wants a multiple of 4 bytes.
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const padded =
      bytes.byteLength % 4
        ? (() => {
            const p = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
            p.set(bytes);
            return p;
          })()
        : bytes;
    this.device.queue.writeBuffer(buffer, byteOffset, padded as Uint8Array<ArrayBuffer>);
  }

  free(...buffers: (GPUBuffer | undefined)[]): void {
    for (const b of buffers) {
      const entry = b && this.live.get(b);
      if (!entry || !b) continue;
      this.live.delete(b);
      this.bytesNow -= entry.size;
      b.destroy();
    }
  }

  /**
   * The kernel of `shader` (src/wgsl/<shader>.wgsl) specialised by `constants`, compiled once per distinct
   * (shader, entry, constants). Compilation errors name the file (the shader or a file it includes) and line.
   */
  kernel(shader: string, constants: ShaderConstants = {}, entry = 'main'): Promise<Kernel> {
    const sorted = Object.entries(constants).sort(([a], [b]) => a.localeCompare(b));
    const key = `${shader}|${entry}|${JSON.stringify(sorted)}`;
    let k = this.kernels.get(key);
    if (!k) {
      k = this.compile(shader, constants, entry);
      this.kernels.set(key, k);
      k.catch(() => this.kernels.delete(key));
    }
    return k;
  }

  private async compile(shader: string, constants: ShaderConstants, entry: string): Promise<Kernel> {
    this.check();
    const text = specialise(loadShader(shader), constants);
    const iface = shaderInterface(text);
    const file = iface.file;
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ label: file, code: text.code });
    const info = await module.getCompilationInfo();
    const scoped = await this.device.popErrorScope();
    const errors = info.messages.filter((m) => m.type === 'error');
    if (errors.length) {
      const lines = text.code.split('\n');
      const message = errors.map(
        (m) =>
          `${origin(text, m.lineNum)}:${m.linePos}: error: ${m.message}\n    ${(lines[m.lineNum - 1] ?? '').trim()}`,
      );
      throw new ShaderCompileError(`WGSL compilation failed\n${message.join('\n')}`);
    }
    if (scoped) throw new ShaderCompileError(`${file}: ${scoped.message}`);
    this.device.pushErrorScope('validation');
    try {
      const pipeline = await this.device.createComputePipelineAsync({
        label: `${shader}:${entry}`,
        layout: 'auto',
        compute: { module, entryPoint: entry },
      });
      return new Kernel(pipeline, iface);
    } catch (e) {
      throw new GpuValidationError(`${file}: pipeline "${entry}" rejected: ${(e as Error).message}`);
    } finally {
      const err = await this.device.popErrorScope();
      if (err) log.debug(`${file}: ${err.message}`);
    }
  }

  /**
   * Bind buffers to the kernel's bindings by name, write its parameters into a uniform the dispatch owns, and
   * describe the dispatch. Every binding the shader declares must be given, and nothing else.
   */
  dispatch(label: string, kernel: Kernel, spec: DispatchSpec): Dispatch {
    this.check();
    const { file, bindings: declared, uniform: at } = kernel.iface;
    const [x, y = 1, z = 1] = spec.groups;
    const maxWg = this.limits.maxComputeWorkgroupsPerDimension ?? 65535;
    if (x > maxWg || y > maxWg || z > maxWg)
      throw new HlmError(`${label}: ${x}x${y}x${z} workgroups exceed this adapter's ${maxWg} per dimension`);
    const missing = [...declared.keys()].filter((name) => !(name in spec.bind));
    const extra = Object.keys(spec.bind).filter((name) => !declared.has(name));
    if (missing.length || extra.length)
      throw new HlmError(
        `${label}: ${file} binds ${[...declared.keys()].join(', ')}` +
          (missing.length ? `; ${missing.join(', ')} not given` : '') +
          (extra.length ? `; it has no ${extra.join(', ')}` : ''),
      );
    const entries: GPUBindGroupEntry[] = Object.entries(spec.bind).map(([name, b]) => {
      const decl = declared.get(name)!;
      if (Boolean(decl.texture) !== 'texture' in b)
        throw new HlmError(`${label}: ${file} declares ${name} as a ${decl.texture ? 'texture' : 'buffer'}`);
      return {
        binding: decl.binding,
        resource: 'texture' in b ? b.texture.createView() : 'buffer' in b ? b : { buffer: b },
      };
    });
    let uniform: GPUBuffer | undefined;
    if (spec.params || at !== undefined) {
      uniform = this.upload(
        `${label} params`,
        kernel.params(spec.params ?? {}),
        GPUBufferUsage.UNIFORM | GPUBufferUsage.COPY_DST,
      );
      entries.push({ binding: at!, resource: { buffer: uniform } });
    }
    const bindGroup = this.device.createBindGroup({ label, layout: kernel.pipeline.getBindGroupLayout(0), entries });
    const owned = [...(uniform ? [uniform] : []), ...(spec.owned ?? [])];
    const d: Dispatch = { label, kernel, pipeline: kernel.pipeline, bindGroup, workgroups: [x, y, z], uniform, owned };
    if (spec.uploads?.length) d.uploads = spec.uploads;
    return d;
  }

  /** Rewrite a dispatch's parameters (e.g. an optimizer's learning rate) before its next submit. */
  setParams(d: Dispatch, values: Record<string, number>): void {
    if (!d.uniform) throw new HlmError(`${d.label}: has no parameters`);
    this.write(d.uniform, d.kernel.params(values));
  }

  /** Free the buffers the dispatches own (their parameter blocks). */
  release(...commands: Command[]): void {
    for (const d of commands) if ('owned' in d) this.free(...d.owned);
  }

  /** Record the commands, in order, into one command encoder (passes split only by copies and clears), and submit. */
  submit(commands: Command[], label = 'step'): void {
    this.check();
    const enc = this.device.createCommandEncoder({ label });
    let pass: GPUComputePassEncoder | undefined;
    for (const c of commands) {
      if ('clear' in c || 'copy' in c) {
        pass?.end();
        pass = undefined;
        if ('clear' in c) enc.clearBuffer(c.clear, c.offset ?? 0, c.size);
        else enc.copyBufferToBuffer(c.copy.from, c.copy.fromOffset, c.copy.to, c.copy.toOffset, c.copy.size);
        continue;
      }
      if (c.workgroups.some((n) => n === 0)) continue;
      if (c.uploads) {
        pass?.end();
        pass = undefined;
        for (const u of c.uploads)
          enc.copyBufferToTexture(
            // WebGPU wants bytesPerRow, when given, a multiple of 256; a one-row copy goes without.
            { buffer: u.from, offset: u.offset, bytesPerRow: u.height > 1 ? u.bytesPerRow : undefined },
            { texture: u.to },
            [u.width, u.height],
          );
      }
      if (this.profiler) {
        // A pass per dispatch, so each has its own begin and end timestamps.
        pass?.end();
        pass = enc.beginComputePass({ label, timestampWrites: this.profiler.writes(c) });
      }
      pass ??= enc.beginComputePass({ label });
      pass.setPipeline(c.pipeline);
      pass.setBindGroup(0, c.bindGroup);
      pass.dispatchWorkgroups(...c.workgroups);
      this.submitted.dispatches++;
    }
    pass?.end();
    this.profiler?.resolve(enc);
    this.device.queue.submit([enc.finish()]);
    this.submitted.submits++;
  }

  /** Like submit, but waits and turns validation errors into exceptions naming the dispatches. */
  async run(dispatches: Command[], label = 'step'): Promise<void> {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    this.submit(dispatches, label);
    const invalid = await this.device.popErrorScope();
    const oom = await this.device.popErrorScope();
    if (invalid) {
      const name = (d: Command) =>
        'clear' in d ? `clear ${d.clear.label}` : 'copy' in d ? `copy to ${d.copy.to.label}` : d.label;
      throw new GpuValidationError(`${label} [${dispatches.map(name).join(', ')}]: ${invalid.message}`);
    }
    if (oom) throw new HlmError(`${label}: GPU out of memory: ${oom.message}`);
    await this.done();
  }

  /** Wait for all submitted work, failing (not hanging) if the device is lost meanwhile. */
  async done(): Promise<void> {
    this.check();
    await Promise.race([this.device.queue.onSubmittedWorkDone(), this.device.lost]);
    this.check();
  }

  /** Read `count` elements starting at element `offset` of `buffer` back to the host. */
  async read<T extends Float32Array | Uint32Array | Int32Array>(
    buffer: GPUBuffer,
    ctor: { new (b: ArrayBuffer): T; BYTES_PER_ELEMENT: number },
    offset = 0,
    count?: number,
  ): Promise<T> {
    this.check();
    const bpe = ctor.BYTES_PER_ELEMENT;
    const n = count ?? Math.floor(buffer.size / bpe) - offset;
    const bytes = Math.ceil((n * bpe) / 4) * 4;
    const staging = this.device.createBuffer({
      label: 'readback',
      size: Math.max(bytes, 4),
      usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST,
    });
    try {
      const enc = this.device.createCommandEncoder({ label: 'readback' });
      enc.copyBufferToBuffer(buffer, offset * bpe, staging, 0, bytes);
      this.device.queue.submit([enc.finish()]);
      await Promise.race([staging.mapAsync(GPUMapMode.READ), this.device.lost.then(() => this.check())]);
      return new ctor(staging.getMappedRange(0, bytes).slice(0, n * bpe));
    } finally {
      staging.destroy();
    }
  }

  readF32(buffer: GPUBuffer, offset = 0, count?: number): Promise<Float32Array> {
    return this.read(buffer, Float32Array, offset, count);
  }

  /** Release every buffer and the device; dawn.node otherwise keeps the process alive. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const b of this.live.keys()) b.destroy();
    this.live.clear();
    for (const t of this.textures.values()) t.destroy();
    this.textures.clear();
    this.bytesNow = 0;
    this.sharedBytes = 0;
    this.device.destroy();
  }
}
