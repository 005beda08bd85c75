// Ownership of GPU memory: a scope records the buffers it allocated (or adopted from a kernel
// helper) and the dispatches it keeps, and release() frees all of them together, child scopes
// first. Models, heads and generators each hold one, so destroying one cannot forget a buffer.
// Sizes are in bytes, as everywhere in src/gpu.
//
// This module sees the device only through the few methods it calls, so device.ts can hand out
// scopes (gpu.scope(name)) without an import cycle.

/** What a scope needs from the device (src/gpu/device.ts's Gpu). */
export interface ScopeHost {
  buffer(label: string, bytes: number, usage?: number): GPUBuffer;
  upload(label: string, data: ArrayBufferView, usage?: number): GPUBuffer;
  free(...buffers: (GPUBuffer | undefined)[]): void;
}

/** A dispatch's parameter buffers (src/gpu/device.ts's Dispatch), freed with it. */
interface Owning {
  owned: GPUBuffer[];
}

export class GpuScope {
  private buffers: GPUBuffer[] = [];
  private dispatches: Owning[] = [];
  private children = new Set<GpuScope>();
  private released = false;

  constructor(
    private readonly host: ScopeHost,
    readonly name: string,
    private readonly parent?: GpuScope,
  ) {}

  /** A storage buffer (or one of `usage`) of at least `bytes`, freed with the scope. */
  buffer(label: string, bytes: number, usage?: number): GPUBuffer {
    this.live();
    return this.adopt(this.host.buffer(label, bytes, usage))[0];
  }

  /** A buffer holding `data`, freed with the scope. */
  upload(label: string, data: ArrayBufferView, usage?: number): GPUBuffer {
    this.live();
    return this.adopt(this.host.upload(label, data, usage))[0];
  }

  /** Take ownership of buffers allocated elsewhere (a kernel's buffer helpers). */
  adopt(...buffers: GPUBuffer[]): GPUBuffer[] {
    this.live();
    this.buffers.push(...buffers);
    return buffers;
  }

  /** Keep dispatches (one or a list) until the scope is released, which frees the buffers they own. */
  keep<T extends Owning | Owning[]>(d: T): T {
    this.live();
    if (Array.isArray(d)) this.dispatches.push(...d);
    else this.dispatches.push(d);
    return d;
  }

  /** A scope released with this one (or before it, on its own). */
  scope(name: string): GpuScope {
    this.live();
    const child = new GpuScope(this.host, `${this.name}/${name}`, this);
    this.children.add(child);
    return child;
  }

  /** Free everything the scope and its children own. Releasing twice does nothing. */
  release(): void {
    if (this.released) return;
    this.released = true;
    for (const c of [...this.children].reverse()) c.release();
    for (const d of this.dispatches) this.host.free(...d.owned);
    this.host.free(...this.buffers);
    this.dispatches = [];
    this.buffers = [];
    this.parent?.children.delete(this);
  }

  private live(): void {
    if (this.released) throw new Error(`GPU scope "${this.name}" used after release`);
  }
}
