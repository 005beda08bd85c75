// The safetensors format: an 8-byte little-endian header length N, N bytes of JSON header
// ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {string: string}}),
// then the data, little-endian, C order. Written byte for byte as the reference
// implementation (the Rust crate behind Python's `safetensors`) writes it: tensors sorted by
// descending dtype alignment then name, data contiguous in that order, compact JSON with
// `__metadata__` first, the header padded with spaces to a multiple of 8 bytes. Read with the
// reference's checks, each refusal naming the file and the tensor or byte offset at fault.
import { readFile } from 'node:fs/promises';
import { endianness } from 'node:os';
import { HlmError } from '../errors.js';
import { writeFileAtomic } from '../util/atomic-write.js';

/** The reference's dtypes, in its order of increasing alignment (used for sorting on write). */
export const DTYPES = [
  'BOOL',
  'U8',
  'I8',
  'F8_E5M2',
  'F8_E4M3',
  'I16',
  'U16',
  'F16',
  'BF16',
  'I32',
  'U32',
  'F32',
  'F64',
  'I64',
  'U64',
] as const;
export type Dtype = (typeof DTYPES)[number];

export const DTYPE_SIZE: Readonly<Record<Dtype, number>> = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
};

/** The reference refuses larger headers. */
export const MAX_HEADER_SIZE = 100_000_000;

export interface SafeTensor {
  dtype: Dtype;
  shape: number[];
  /** The tensor's bytes, a view into the file's buffer. */
  bytes: Uint8Array;
  /** Absolute byte offset of the data in the file, for messages. */
  fileOffset: number;
}

export interface SafetensorsFile {
  /** Tensors in file (data) order. */
  tensors: Map<string, SafeTensor>;
  metadata: Record<string, string>;
  /** Where it came from, for messages. */
  where: string;
}

/** What to write: data's bytes (any typed array) must match dtype × shape. */
export interface TensorToWrite {
  dtype: Dtype;
  shape: readonly number[];
  data: ArrayBufferView;
}

function checkLittleEndian(): void {
  // Typed arrays use the host's byte order; the format is little-endian.
  if (endianness() !== 'LE') throw new HlmError('safetensors: hlm needs a little-endian host');
}

const numel = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const fmtShape = (shape: readonly number[]) => `[${shape.join(', ')}]`;

function bytesOf(v: ArrayBufferView): Uint8Array {
  return new Uint8Array(v.buffer, v.byteOffset, v.byteLength);
}

const utf8 = new TextEncoder();

/** Byte order of UTF-8, which is what the reference sorts names by. */
function compareNames(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a, 'utf8'), Buffer.from(b, 'utf8'));
}

interface Prepared {
  header: Uint8Array; // 8-byte length + padded JSON
  order: [string, TensorToWrite][];
  dataBytes: number;
}

function prepare(
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Prepared {
  checkLittleEndian();
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const rank = (d: Dtype) => DTYPES.indexOf(d);
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new HlmError('safetensors: a tensor cannot be named __metadata__');
    if (!DTYPES.includes(t.dtype)) throw new HlmError(`safetensors: tensor '${name}' has unknown dtype '${t.dtype}'`);
    if (!t.shape.every((s) => Number.isSafeInteger(s) && s >= 0))
      throw new HlmError(`safetensors: tensor '${name}' has shape ${fmtShape(t.shape)}`);
    const want = numel(t.shape) * DTYPE_SIZE[t.dtype];
    if (t.data.byteLength !== want) {
      throw new HlmError(
        `safetensors: tensor '${name}' has ${t.data.byteLength} bytes of data; ${t.dtype} × ${fmtShape(t.shape)} ` +
          `needs ${want}`,
      );
    }
  }
  // Descending alignment first, so every tensor's data starts aligned for its dtype.
  entries.sort(([an, a], [bn, b]) => rank(b.dtype) - rank(a.dtype) || compareNames(an, bn));
  const parts: string[] = [];
  if (metadata !== undefined) {
    const keys = Object.keys(metadata).sort(compareNames);
    for (const k of keys)
      if (typeof metadata[k] !== 'string') throw new HlmError(`safetensors: metadata '${k}' must be a string`);
    parts.push(`"__metadata__":{${keys.map((k) => `${JSON.stringify(k)}:${JSON.stringify(metadata[k])}`).join(',')}}`);
  }
  let offset = 0;
  for (const [name, t] of entries) {
    const end = offset + t.data.byteLength;
    // Built by hand: JSON.stringify would list integer-like names ("0") before the others.
    parts.push(
      `${JSON.stringify(name)}:{"dtype":"${t.dtype}","shape":[${t.shape.join(',')}],"data_offsets":[${offset},${end}]}`,
    );
    offset = end;
  }
  const json = utf8.encode(`{${parts.join(',')}}`);
  const n = Math.ceil(json.length / 8) * 8;
  const header = new Uint8Array(8 + n).fill(0x20, 8);
  new DataView(header.buffer).setBigUint64(0, BigInt(n), true);
  header.set(json, 8);
  return { header, order: entries, dataBytes: offset };
}

/** The whole file in memory. */
export function serializeSafetensors(
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Uint8Array {
  const { header, order, dataBytes } = prepare(tensors, metadata);
  const out = new Uint8Array(header.length + dataBytes);
  out.set(header);
  let at = header.length;
  for (const [, t] of order) {
    out.set(bytesOf(t.data), at);
    at += t.data.byteLength;
  }
  return out;
}

/** Write a file atomically, tensor by tensor (no second copy of a large model in memory). */
export async function writeSafetensorsFile(
  path: string,
  tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>,
  metadata?: Record<string, string>,
): Promise<void> {
  const { header, order } = prepare(tensors, metadata);
  writeFileAtomic(path, [header, ...order.map(([, t]) => bytesOf(t.data))], 'safetensors file');
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** Parse and validate a whole file's bytes; `where` (the path) starts every message. */
export function parseSafetensors(buf: Uint8Array, where: string): SafetensorsFile {
  const fail = (msg: string) => new HlmError(`${where}: ${msg}`);
  if (buf.length < 8)
    throw fail(`file is ${buf.length} bytes, too short to hold the 8-byte header length (truncated?)`);
  const n64 = new DataView(buf.buffer, buf.byteOffset, 8).getBigUint64(0, true);
  if (n64 > BigInt(MAX_HEADER_SIZE)) {
    throw fail(
      `header length ${n64} (bytes 0-7) is over the ${MAX_HEADER_SIZE}-byte limit; the file is corrupt or not ` +
        `safetensors`,
    );
  }
  const n = Number(n64);
  const dataStart = 8 + n;
  if (dataStart > buf.length)
    throw fail(
      `header length ${n} (bytes 0-7) runs past the end of the file: the header would end at byte ${dataStart}, the ` +
        `file has ${buf.length} bytes (truncated?)`,
    );
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(buf.subarray(8, dataStart));
  } catch {
    throw fail(`header (bytes 8-${dataStart}) is not valid UTF-8`);
  }
  let header: unknown;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw fail(`header (bytes 8-${dataStart}) is not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(header)) throw fail(`header (bytes 8-${dataStart}) is not a JSON object`);

  const metadata: Record<string, string> = {};
  const infos: { name: string; dtype: Dtype; shape: number[]; begin: number; end: number }[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === '__metadata__') {
      if (!isObject(info)) throw fail('__metadata__ must be an object of strings');
      for (const [k, v] of Object.entries(info)) {
        if (typeof v !== 'string') throw fail(`__metadata__ entry '${k}' must be a string, got ${JSON.stringify(v)}`);
        metadata[k] = v;
      }
      continue;
    }
    const bad = (msg: string) => fail(`tensor '${name}': ${msg}`);
    if (!isObject(info)) throw bad('entry must be an object with dtype, shape and data_offsets');
    const { dtype, shape, data_offsets: offs } = info;
    if (typeof dtype !== 'string' || !DTYPES.includes(dtype as Dtype))
      throw bad(`unknown dtype ${JSON.stringify(dtype)}`);
    if (!Array.isArray(shape) || !shape.every((s) => Number.isSafeInteger(s) && s >= 0))
      throw bad(`shape ${JSON.stringify(shape)} is not a list of non-negative integers`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((o) => Number.isSafeInteger(o) && o >= 0)) {
      throw bad(`data_offsets ${JSON.stringify(offs)} must be [begin, end], two non-negative integers`);
    }
    const [begin, end] = offs as number[];
    if (end < begin) throw bad(`data_offsets [${begin}, ${end}] end before they begin`);
    const want = numel(shape as number[]) * DTYPE_SIZE[dtype as Dtype];
    if (!Number.isSafeInteger(want)) throw bad(`shape ${fmtShape(shape as number[])} is too large`);
    if (end - begin !== want) {
      throw bad(
        `data_offsets [${begin}, ${end}] hold ${end - begin} bytes, but ${dtype} × ${fmtShape(shape as number[])} ` +
          `needs ${want}`,
      );
    }
    infos.push({ name, dtype: dtype as Dtype, shape: shape as number[], begin, end });
  }

  // The data must be exactly covered: sorted by offset, each tensor begins where the last ended.
  infos.sort((a, b) => a.begin - b.begin || a.end - b.end);
  const dataLen = buf.length - dataStart;
  const tensors = new Map<string, SafeTensor>();
  let prev: (typeof infos)[number] | undefined;
  for (const t of infos) {
    const at = prev?.end ?? 0;
    if (t.begin < at) {
      throw fail(
        `tensor '${t.name}': data_offsets [${t.begin}, ${t.end}] overlap tensor '${prev!.name}' [${prev!.begin}, ` +
          `${prev!.end}]`,
      );
    }
    if (t.begin > at) {
      throw fail(
        `tensor '${t.name}': data_offsets begin at ${t.begin} but the previous data ends at ${at}: bytes ` +
          `${dataStart + at}-${dataStart + t.begin} of the file belong to no tensor`,
      );
    }
    if (t.end > dataLen) {
      throw fail(
        `tensor '${t.name}': data (bytes ${dataStart + t.begin}-${dataStart + t.end} of the file) runs past the end ` +
          `of the file at byte ${buf.length} (truncated?)`,
      );
    }
    tensors.set(t.name, {
      dtype: t.dtype,
      shape: t.shape,
      bytes: buf.subarray(dataStart + t.begin, dataStart + t.end),
      fileOffset: dataStart + t.begin,
    });
    prev = t;
  }
  const covered = prev?.end ?? 0;
  if (covered !== dataLen) {
    throw fail(
      `${dataLen - covered} bytes after the last tensor's data (from byte ${dataStart + covered}) belong to no ` +
        `tensor: the file is longer than its header says`,
    );
  }
  return { tensors, metadata, where };
}

export async function readSafetensorsFile(path: string): Promise<SafetensorsFile> {
  let buf: Buffer;
  try {
    buf = await readFile(path);
  } catch (e) {
    throw new HlmError(`cannot read ${path}: ${(e as Error).message}`);
  }
  return parseSafetensors(buf, path);
}

/** A typed array over the tensor's bytes, copied first when they are not aligned for the type. */
function aligned<T>(t: SafeTensor, size: number, make: (b: ArrayBuffer, off: number, n: number) => T): T {
  let { bytes } = t;
  // new Uint8Array(view) copies (Buffer#slice would not), and a fresh buffer starts aligned.
  if (bytes.byteOffset % size !== 0) bytes = new Uint8Array(bytes);
  return make(bytes.buffer as ArrayBuffer, bytes.byteOffset, bytes.byteLength / size);
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exp = (h >> 10) & 0x1f;
  const frac = h & 0x3ff;
  if (exp === 0) return sign * frac * 2 ** -24; // subnormal
  if (exp === 31) return frac ? NaN : sign * Infinity;
  return sign * (1 + frac / 1024) * 2 ** (exp - 15);
}

/**
 * A floating-point tensor as float32 (F32 copied, F16/BF16 widened, F64 rounded), written
 * into `out` when given (its length must match), else into a new array.
 */
export function tensorToFloat32(t: SafeTensor, name: string, where: string, out?: Float32Array): Float32Array {
  checkLittleEndian();
  const n = numel(t.shape);
  if (out && out.length !== n)
    throw new Error(`tensorToFloat32 ${name}: output holds ${out.length} floats, tensor has ${n}`);
  const dst = out ?? new Float32Array(n);
  switch (t.dtype) {
    case 'F32':
      dst.set(aligned(t, 4, (b, o, k) => new Float32Array(b, o, k)));
      break;
    case 'F64':
      dst.set(aligned(t, 8, (b, o, k) => new Float64Array(b, o, k)));
      break;
    case 'F16': {
      const src = aligned(t, 2, (b, o, k) => new Uint16Array(b, o, k));
      for (let i = 0; i < n; i++) dst[i] = f16ToF32(src[i]);
      break;
    }
    case 'BF16': {
      // bfloat16 is the top half of a float32.
      const src = aligned(t, 2, (b, o, k) => new Uint16Array(b, o, k));
      const wide = new Uint32Array(dst.buffer, dst.byteOffset, n);
      for (let i = 0; i < n; i++) wide[i] = src[i] << 16;
      break;
    }
    default:
      throw new HlmError(
        `${where}: tensor '${name}' has dtype ${t.dtype}; a floating-point tensor (F32, F16, BF16, F64) was expected`,
      );
  }
  return dst;
}

/**
 * A float32 view of the tensor without copying when it is F32 and aligned in its buffer (the
 * view keeps the whole file's buffer alive: for files that are one big tensor, like the
 * optimizer's moments); otherwise a converted copy.
 */
export function tensorFloat32View(t: SafeTensor, name: string, where: string): Float32Array {
  if (t.dtype === 'F32' && t.bytes.byteOffset % 4 === 0) {
    checkLittleEndian();
    return new Float32Array(t.bytes.buffer, t.bytes.byteOffset, t.bytes.byteLength / 4);
  }
  return tensorToFloat32(t, name, where);
}

/** An integer (or BOOL) tensor as numbers; 64-bit values beyond 2^53 are refused. */
export function tensorToIntegers(t: SafeTensor, name: string, where: string): number[] {
  checkLittleEndian();
  const view = (() => {
    switch (t.dtype) {
      case 'BOOL':
      case 'U8':
        return aligned(t, 1, (b, o, k) => new Uint8Array(b, o, k));
      case 'I8':
        return aligned(t, 1, (b, o, k) => new Int8Array(b, o, k));
      case 'I16':
        return aligned(t, 2, (b, o, k) => new Int16Array(b, o, k));
      case 'U16':
        return aligned(t, 2, (b, o, k) => new Uint16Array(b, o, k));
      case 'I32':
        return aligned(t, 4, (b, o, k) => new Int32Array(b, o, k));
      case 'U32':
        return aligned(t, 4, (b, o, k) => new Uint32Array(b, o, k));
      case 'I64':
        return aligned(t, 8, (b, o, k) => new BigInt64Array(b, o, k));
      case 'U64':
        return aligned(t, 8, (b, o, k) => new BigUint64Array(b, o, k));
      default:
        throw new HlmError(`${where}: tensor '${name}' has dtype ${t.dtype}; an integer tensor was expected`);
    }
  })();
  return Array.from(view as ArrayLike<number | bigint>, (v, i) => {
    const x = Number(v);
    if (!Number.isSafeInteger(x))
      throw new HlmError(`${where}: tensor '${name}' element ${i} (${v}) is too large for hlm`);
    return x;
  });
}
