import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import {
  parseSafetensors,
  readSafetensorsFile,
  serializeSafetensors,
  tensorFloat32View,
  tensorToFloat32,
  tensorToIntegers,
  writeSafetensorsFile,
  type SafeTensor,
} from '../src/model/safetensors.js';
import { makeRandom } from './helpers/check.js';

const f32 = (...xs: number[]) => Array.from(new Uint8Array(Float32Array.from(xs).buffer));
const ascii = (s: string) => Array.from(Buffer.from(s, 'latin1'));
const u64 = (n: number) => Array.from(new Uint8Array(BigUint64Array.of(BigInt(n)).buffer));

/** A file from a header text (padded here with spaces to 8) and data bytes. */
function fileOf(header: string, data: number[] | Uint8Array = []): Uint8Array {
  const padded = header + ' '.repeat((8 - (header.length % 8)) % 8);
  return Uint8Array.from([...u64(padded.length), ...ascii(padded), ...data]);
}

function get(file: ReturnType<typeof parseSafetensors>, name: string): SafeTensor {
  const t = file.tensors.get(name);
  if (!t) throw new Error(`no tensor ${name}`);
  return t;
}

test("byte-exact with the reference implementation's own test vectors", () => {
  // safetensors' Rust tests (test_serialization, test_empty): one F32 [1,2,3] tensor "attn.0".
  const expected = [
    64, 0, 0, 0, 0, 0, 0, 0, 123, 34, 97, 116, 116, 110, 46, 48, 34, 58, 123, 34, 100, 116, 121, 112, 101, 34, 58, 34,
    70, 51, 50, 34, 44, 34, 115, 104, 97, 112, 101, 34, 58, 91, 49, 44, 50, 44, 51, 93, 44, 34, 100, 97, 116, 97, 95,
    111, 102, 102, 115, 101, 116, 115, 34, 58, 91, 48, 44, 50, 52, 93, 125, 125, 0, 0, 0, 0, 0, 0, 128, 63, 0, 0, 0, 64,
    0, 0, 64, 64, 0, 0, 128, 64, 0, 0, 160, 64,
  ];
  const bytes = serializeSafetensors({
    'attn.0': { dtype: 'F32', shape: [1, 2, 3], data: Float32Array.of(0, 1, 2, 3, 4, 5) },
  });
  expect(Array.from(bytes)).toEqual(expected);
  const back = parseSafetensors(Uint8Array.from(expected), 'vec');
  expect(Array.from(tensorToFloat32(get(back, 'attn.0'), 'attn.0', 'vec'))).toEqual([0, 1, 2, 3, 4, 5]);

  expect(Array.from(serializeSafetensors({}))).toEqual([8, 0, 0, 0, 0, 0, 0, 0, 123, 125, 32, 32, 32, 32, 32, 32]);
  expect(Array.from(serializeSafetensors({}, { framework: 'pt' }))).toEqual([
    40, 0, 0, 0, 0, 0, 0, 0, 123, 34, 95, 95, 109, 101, 116, 97, 100, 97, 116, 97, 95, 95, 34, 58, 123, 34, 102, 114,
    97, 109, 101, 119, 111, 114, 107, 34, 58, 34, 112, 116, 34, 125, 125, 32, 32, 32, 32, 32,
  ]);
});

test("a file in Python safetensors' byte format (mixed dtypes, metadata) reads and re-serialises identically", () => {
  // save_file({"weight": f32 [[1,2],[3,4]], "step": int64 7, "half": f16 [1,-2,0.5]}, metadata={"format": "pt"}):
  // sorted by descending dtype alignment (I64, F32, F16), then name; data contiguous in that order.
  const header =
    '{"__metadata__":{"format":"pt"},' +
    '"step":{"dtype":"I64","shape":[],"data_offsets":[0,8]},' +
    '"weight":{"dtype":"F32","shape":[2,2],"data_offsets":[8,24]},' +
    '"half":{"dtype":"F16","shape":[3],"data_offsets":[24,30]}}';
  expect(header.length).toBe(206); // so two spaces of padding make 208
  const bytes = Uint8Array.from([
    208,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    ...ascii(header),
    32,
    32,
    7,
    0,
    0,
    0,
    0,
    0,
    0,
    0,
    ...f32(1, 2, 3, 4),
    0x00,
    0x3c,
    0x00,
    0xc0,
    0x00,
    0x38,
  ]);
  const file = parseSafetensors(bytes, 'py.safetensors');
  expect(file.metadata).toEqual({ format: 'pt' });
  expect([...file.tensors.keys()]).toEqual(['step', 'weight', 'half']);
  expect(get(file, 'weight').shape).toEqual([2, 2]);
  expect(Array.from(tensorToFloat32(get(file, 'weight'), 'weight', 'py'))).toEqual([1, 2, 3, 4]);
  expect(Array.from(tensorToFloat32(get(file, 'half'), 'half', 'py'))).toEqual([1, -2, 0.5]);
  expect(tensorToIntegers(get(file, 'step'), 'step', 'py')).toEqual([7]);
  expect(get(file, 'step').shape).toEqual([]);
  expect(get(file, 'weight').fileOffset).toBe(8 + 208 + 8);

  const again = serializeSafetensors(
    {
      weight: { dtype: 'F32', shape: [2, 2], data: Float32Array.of(1, 2, 3, 4) },
      half: { dtype: 'F16', shape: [3], data: Uint16Array.of(0x3c00, 0xc000, 0x3800) },
      step: { dtype: 'I64', shape: [], data: BigInt64Array.of(7n) },
    },
    { format: 'pt' },
  );
  expect(Buffer.from(again).equals(Buffer.from(bytes))).toBe(true);
});

test('half, bfloat16 and double widen or round to float32; integer dtypes read as numbers', () => {
  const file = parseSafetensors(
    serializeSafetensors({
      h: { dtype: 'F16', shape: [5], data: Uint16Array.of(0x0001, 0x7c00, 0xfc00, 0x3555, 0x7bff) },
      b: { dtype: 'BF16', shape: [3], data: Uint16Array.of(0x3f80, 0xc020, 0x0000) },
      d: { dtype: 'F64', shape: [2], data: Float64Array.of(0.1, -1e300) },
      i: { dtype: 'I32', shape: [2], data: Int32Array.of(-5, 2 ** 31 - 1) },
      u: { dtype: 'U8', shape: [2], data: Uint8Array.of(0, 255) },
      big: { dtype: 'I64', shape: [1], data: BigInt64Array.of(2n ** 60n) },
    }),
    'mix',
  );
  expect(Array.from(tensorToFloat32(get(file, 'h'), 'h', 'mix'))).toEqual([
    2 ** -24,
    Infinity,
    -Infinity,
    Math.fround(0.333251953125),
    65504,
  ]);
  expect(Array.from(tensorToFloat32(get(file, 'b'), 'b', 'mix'))).toEqual([1, -2.5, 0]);
  expect(Array.from(tensorToFloat32(get(file, 'd'), 'd', 'mix'))).toEqual([Math.fround(0.1), -Infinity]);
  expect(tensorToIntegers(get(file, 'i'), 'i', 'mix')).toEqual([-5, 2 ** 31 - 1]);
  expect(tensorToIntegers(get(file, 'u'), 'u', 'mix')).toEqual([0, 255]);
  expect(() => tensorToIntegers(get(file, 'big'), 'big', 'mix')).toThrow(
    /mix: tensor 'big' element 0 \(1152921504606846976\) is too large/,
  );
  expect(() => tensorToFloat32(get(file, 'i'), 'i', 'mix')).toThrow(
    /tensor 'i' has dtype I32; a floating-point tensor/,
  );
  expect(() => tensorToIntegers(get(file, 'd'), 'd', 'mix')).toThrow(/tensor 'd' has dtype F64; an integer tensor/);
});

test('round trip through a file: random tensors, odd shapes, names JSON would reorder, unaligned data', async () => {
  const r = makeRandom();
  const dir = mkdtempSync(join(tmpdir(), 'hlm-st-'));
  const tensors = {
    'b.weight': { dtype: 'F32' as const, shape: [3, 5], data: r.normal(15) },
    'a.bias': { dtype: 'F32' as const, shape: [7], data: r.normal(7) },
    '10': { dtype: 'F32' as const, shape: [1], data: r.normal(1) },
    '2': { dtype: 'F32' as const, shape: [2, 0], data: new Float32Array(0) },
    'x.mask': { dtype: 'U8' as const, shape: [3], data: Uint8Array.of(1, 0, 1) },
  };
  const path = join(dir, 't.safetensors');
  await writeSafetensorsFile(path, tensors, { note: 'hi', format: 'pt' });
  const bytes = readFileSync(path);
  expect(Buffer.from(serializeSafetensors(tensors, { format: 'pt', note: 'hi' })).equals(bytes)).toBe(true);
  const header = bytes.subarray(8, 8 + Number(bytes.readBigUInt64LE(0))).toString('latin1');
  // Names sorted bytewise ("10" < "2" < "a.bias"), after the metadata, keys sorted.
  expect(header.indexOf('"__metadata__":{"format":"pt","note":"hi"}')).toBe(1);
  expect(header.indexOf('"10"')).toBeLessThan(header.indexOf('"2"'));
  expect(header.indexOf('"2"')).toBeLessThan(header.indexOf('"a.bias"'));
  expect(header.indexOf('"b.weight"')).toBeLessThan(header.indexOf('"x.mask"')); // U8 after F32
  expect(header.length % 8).toBe(0);
  const file = await readSafetensorsFile(path);
  for (const [name, t] of Object.entries(tensors)) {
    const got = get(file, name);
    expect(got.shape).toEqual(t.shape);
    if (t.dtype === 'F32') expect(tensorToFloat32(got, name, path)).toEqual(t.data);
  }
  // Data at an offset that is not a multiple of 4 inside its buffer is still read correctly.
  const shifted = Buffer.alloc(bytes.length + 1);
  bytes.copy(shifted, 1);
  const moved = parseSafetensors(shifted.subarray(1), 'shifted');
  expect(shifted.subarray(1).byteOffset % 4).not.toBe(0);
  expect(tensorToFloat32(get(moved, 'b.weight'), 'b.weight', 'shifted')).toEqual(tensors['b.weight'].data);
  // A view shares the file's buffer when aligned, and is a converted copy otherwise.
  const view = tensorFloat32View(get(file, 'b.weight'), 'b.weight', path);
  expect(view.buffer).toBe(get(file, 'b.weight').bytes.buffer);
  expect(view).toEqual(tensors['b.weight'].data);
  const copy = tensorFloat32View(get(moved, 'b.weight'), 'b.weight', 'shifted');
  expect(copy.buffer).not.toBe(shifted.buffer);
  expect(copy).toEqual(tensors['b.weight'].data);
  // Writing refuses data that does not match dtype × shape.
  expect(() => serializeSafetensors({ x: { dtype: 'F32', shape: [2, 2], data: new Float32Array(3) } })).toThrow(
    /tensor 'x' has 12 bytes of data; F32 × \[2, 2\] needs 16/,
  );
});

describe('a corrupt file is refused with the file and the tensor or byte offset at fault', () => {
  const good = fileOf(
    '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[3],"data_offsets":[8,20]}}',
    f32(1, 2, 3, 4, 5),
  );
  const headerLen = good.length - 20 - 8;
  const refuse = (bytes: Uint8Array, message: RegExp) => {
    let err: unknown;
    try {
      parseSafetensors(bytes, 'ckpt/model.safetensors');
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(HlmError);
    expect((err as Error).message).toMatch(/^ckpt\/model\.safetensors: /);
    expect((err as Error).message).toMatch(message);
  };

  test('the intact file parses', () => {
    expect([...parseSafetensors(good, 'x').tensors.keys()]).toEqual(['a', 'b']);
  });

  test('truncated at several places', () => {
    refuse(good.subarray(0, 0), /file is 0 bytes, too short to hold the 8-byte header length/);
    refuse(good.subarray(0, 5), /file is 5 bytes/);
    refuse(
      good.subarray(0, 8),
      new RegExp(
        `header length ${headerLen} \\(bytes 0-7\\) runs past the end of the file: the header would end at byte ` +
          `${8 + headerLen}, the file has 8 bytes`,
      ),
    );
    refuse(good.subarray(0, 40), /runs past the end of the file/);
    refuse(
      good.subarray(0, 8 + headerLen),
      new RegExp(
        `tensor 'a': data \\(bytes ${8 + headerLen}-${16 + headerLen} of the file\\) runs past the end of the file ` +
          `at byte ${8 + headerLen}`,
      ),
    );
    refuse(
      good.subarray(0, 8 + headerLen + 10),
      new RegExp(
        `tensor 'b': data \\(bytes ${16 + headerLen}-${28 + headerLen} of the file\\) runs past the end of the file ` +
          `at byte ${18 + headerLen}`,
      ),
    );
    refuse(good.subarray(0, good.length - 1), /tensor 'b': data .* runs past the end .*\(truncated\?\)/);
  });

  test('a damaged header length', () => {
    const flip = (n: bigint) => {
      const b = good.slice();
      new DataView(b.buffer).setBigUint64(0, n, true);
      return b;
    };
    refuse(
      flip(BigInt(headerLen) | (1n << 40n)),
      /header length 1099511627\d+ \(bytes 0-7\) is over the 100000000-byte limit/,
    );
    refuse(flip(BigInt(good.length)), /runs past the end of the file/);
    refuse(flip(BigInt(headerLen - 8)), new RegExp(`header \\(bytes 8-${headerLen}\\) is not valid JSON`));
    // Eight bytes of float data join the header: 1.0f is 00 00 80 3f, and 0x80 cannot start a UTF-8 character.
    refuse(flip(BigInt(headerLen + 8)), new RegExp(`header \\(bytes 8-${headerLen + 16}\\) is not valid UTF-8`));
  });

  test('bad offsets: overlapping, with a gap, not matching dtype × shape, past the end, reversed', () => {
    refuse(
      fileOf(
        '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[3],"data_offsets":[4,16]}}',
        f32(1, 2, 3, 4),
      ),
      /tensor 'b': data_offsets \[4, 16\] overlap tensor 'a' \[0, 8\]/,
    );
    const gap = fileOf(
      '{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}',
      f32(1, 2, 3, 4, 5),
    );
    refuse(
      gap,
      /tensor 'b': data_offsets begin at 12 but the previous data ends at 8: bytes \d+-\d+ of the file belong to no tensor/,
    );
    refuse(
      fileOf('{"a":{"dtype":"F32","shape":[2,2],"data_offsets":[0,8]}}', f32(1, 2)),
      /tensor 'a': data_offsets \[0, 8\] hold 8 bytes, but F32 × \[2, 2\] needs 16/,
    );
    refuse(
      fileOf('{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}', f32(1, 2)),
      /tensor 'a': data \(bytes \d+-\d+ of the file\) runs past the end/,
    );
    refuse(
      fileOf('{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}', f32(1, 2)),
      /tensor 'a': data_offsets \[8, 0\] end before they begin/,
    );
    refuse(
      fileOf('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}}', f32(1, 2)),
      /tensor 'a': data_offsets \[0\] must be \[begin, end\]/,
    );
    refuse(
      fileOf('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}', f32(1, 2, 3)),
      /4 bytes after the last tensor's data \(from byte \d+\) belong to no tensor/,
    );
  });

  test('unknown dtype, bad shape, non-JSON, non-UTF-8, not an object, bad metadata', () => {
    refuse(
      fileOf('{"a":{"dtype":"F17","shape":[2],"data_offsets":[0,8]}}', f32(1, 2)),
      /tensor 'a': unknown dtype "F17"/,
    );
    refuse(
      fileOf('{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}', f32(1, 2)),
      /tensor 'a': shape \[-2\] is not a list of non-negative integers/,
    );
    refuse(
      fileOf('{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}', f32(1, 2)),
      /header \(bytes 8-\d+\) is not valid JSON/,
    );
    const latin = fileOf('{"\u00ff":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', f32(1));
    refuse(latin, /header \(bytes 8-\d+\) is not valid UTF-8/);
    refuse(fileOf('[1,2]'), /header \(bytes 8-\d+\) is not a JSON object/);
    refuse(fileOf('{"a":7}'), /tensor 'a': entry must be an object/);
    refuse(fileOf('{"__metadata__":{"format":1}}'), /__metadata__ entry 'format' must be a string, got 1/);
  });

  test('a missing file is an HlmError naming it', async () => {
    await expect(readSafetensorsFile('/nonexistent/model.safetensors')).rejects.toThrow(
      /cannot read \/nonexistent\/model.safetensors/,
    );
  });
});
