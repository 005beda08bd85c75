// Errors a user can act on. The CLI prints their message alone (no stack) and exits non-zero;
// anything else is a bug and keeps its stack.
export class HlmError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = new.target.name;
  }
}

/** A WGSL source failed to compile; the message names the file, line and column. */
export class ShaderCompileError extends HlmError {}

/** WebGPU rejected a pipeline, bind group or command; the message names the labelled object. */
export class GpuValidationError extends HlmError {}

/** The device went away (driver reset, out of memory, destroyed): work in flight is lost. */
export class DeviceLostError extends HlmError {}

/** No adapter matched the requested --device. */
export class NoAdapterError extends HlmError {}
