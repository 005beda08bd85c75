// .npy + vocabulary input and output: byte-exact against NumPy's np.save (format 1.0), round trips,
// detection, and errors naming the file.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  parseNpy,
  readEmbeddings,
  readVocab,
  serializeNpy,
  vocabPathFor,
  writeEmbeddings,
  type Embeddings,
} from '../src/whiten/formats.js';
import { makeRandom } from './helpers/check.js';

// np.save(f, np.array([[1.5, -2, 0.25], [3, 0.004, -7]], dtype=np.float32)) and the same as float64 (NumPy 2.4.6).
const NP_F4 =
  'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY0JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAg' +
  'ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAMA/AAAAwAAAgD4AAEBAbxKDOwAA' +
  '4MA=';
const NP_F8 =
  'k05VTVBZAQB2AHsnZGVzY3InOiAnPGY4JywgJ2ZvcnRyYW5fb3JkZXInOiBGYWxzZSwgJ3NoYXBlJzogKDIsIDMpLCB9ICAgICAg' +
  'ICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgIAoAAAAAAAD4PwAAAAAAAADAAAAAAAAA' +
  '0D8AAAAAAAAIQPyp8dJNYnA/AAAAAAAAHMA=';
const VALUES = [1.5, -2, 0.25, 3, 0.004, -7].map(Math.fround);

const rand = makeRandom();
let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-npy-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, data: string | Buffer) => {
  const p = join(dir, name);
  writeFileSync(p, data);
  return p;
};

function header(descr: string, fortran: string, shape: string, data: Buffer): Buffer {
  let h = `{'descr': '${descr}', 'fortran_order': ${fortran}, 'shape': ${shape}, }`;
  h += ' '.repeat((64 - ((10 + h.length + 1) % 64)) % 64) + '\n';
  const head = Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 0, 0]);
  head.writeUInt16LE(h.length, 8);
  return Buffer.concat([head, Buffer.from(h, 'latin1'), data]);
}

describe('.npy embeddings', () => {
  const small: Embeddings = { words: ['a', 'b'], dim: 3, vectors: Float32Array.from(VALUES), format: 'npy' };

  test('serializeNpy is byte-identical to np.save; NumPy files (f4 and f8) are read', () => {
    expect(serializeNpy(small).equals(Buffer.from(NP_F4, 'base64'))).toBe(true);
    for (const b64 of [NP_F4, NP_F8]) {
      const r = parseNpy('x.npy', Buffer.from(b64, 'base64'));
      expect([r.rows, r.cols]).toEqual([2, 3]);
      expect(Array.from(r.data)).toEqual(VALUES);
    }
  });

  test('round trip with the vocabulary file is exact; detection by extension and by magic', async () => {
    const e: Embeddings = {
      words: ['the', 'naïve', 'x-ray', 'B', 'of'],
      dim: 7,
      vectors: rand.normal(35),
      format: 'npy',
    };
    const p = join(dir, 'v.npy');
    writeEmbeddings(p, e);
    expect(vocabPathFor(p)).toBe(join(dir, 'v.vocab'));
    expect(readFileSync(join(dir, 'v.vocab'), 'utf8')).toBe('the\nnaïve\nx-ray\nB\nof\n');
    const back = await readEmbeddings(p);
    expect(back.format).toBe('npy');
    expect(back.words).toEqual(e.words);
    expect(back.dim).toBe(7);
    expect(Array.from(back.vectors)).toEqual(Array.from(e.vectors));
    // Another extension, explicit vocabulary: detected by the magic bytes.
    const q = file('w.data', readFileSync(p));
    const again = await readEmbeddings(q, undefined, { vocab: join(dir, 'v.vocab') });
    expect(again.format).toBe('npy');
    expect(Array.from(again.vectors)).toEqual(Array.from(e.vectors));
    // Converting: npy in, word2vec out and back.
    writeEmbeddings(join(dir, 'v.txt'), back, 'word2vec');
    expect(Array.from((await readEmbeddings(join(dir, 'v.txt'))).vectors)).toEqual(Array.from(e.vectors));
  });

  test('malformed .npy files and vocabularies fail naming the file', async () => {
    const d4 = Buffer.alloc(2 * 3 * 4);
    file('ok.vocab', 'a\nb\n');
    await expect(readEmbeddings(file('magic.npy', 'hello world, not numpy'))).rejects.toThrow(
      /magic\.npy: not an \.npy file/,
    );
    expect(() => parseNpy('be.npy', header('>f4', 'False', '(2, 3)', d4))).toThrow(
      /be\.npy: \.npy dtype ">f4" not supported/,
    );
    expect(() => parseNpy('i4.npy', header('<i4', 'False', '(2, 3)', d4))).toThrow(/dtype "<i4" not supported/);
    expect(() => parseNpy('f.npy', header('<f4', 'True', '(2, 3)', d4))).toThrow(
      /f\.npy: \.npy array is in Fortran order/,
    );
    expect(() => parseNpy('s.npy', header('<f4', 'False', '(6,)', d4))).toThrow(
      /s\.npy: \.npy shape \(6,\) must be 2-D/,
    );
    expect(() => parseNpy('s3.npy', header('<f4', 'False', '(1, 2, 3)', d4))).toThrow(/must be 2-D/);
    expect(() => parseNpy('t.npy', header('<f4', 'False', '(2, 3)', d4.subarray(0, 20)))).toThrow(
      /t\.npy: \.npy shape \(2, 3\) of <f4 needs 24 data bytes, the file has 20/,
    );
    const nan = Buffer.alloc(24);
    nan.writeFloatLE(NaN, 16);
    expect(() => parseNpy('n.npy', header('<f4', 'False', '(2, 3)', nan))).toThrow(
      /n\.npy: row 2, column 2: value is not finite/,
    );
    const hdr = Buffer.from(NP_F4, 'base64');
    hdr.writeUInt16LE(5000, 8);
    expect(() => parseNpy('h.npy', hdr)).toThrow(/h\.npy: \.npy header runs past the end/);
    const good = header('<f4', 'False', '(2, 3)', d4);
    file('three.vocab', 'a\nb\nc\n');
    await expect(readEmbeddings(file('three.npy', good))).rejects.toThrow(
      /three\.vocab: 3 words for the 2 rows of .*three\.npy/,
    );
    await expect(readEmbeddings(file('novocab.npy', good))).rejects.toThrow(
      /novocab\.vocab: cannot read the vocabulary/,
    );
    await expect(readVocab(file('dup.vocab', 'a\nb\na\n'))).rejects.toThrow(
      /dup\.vocab:3: duplicate word "a" \(first on line 1\)/,
    );
    await expect(readVocab(file('empty.vocab', 'a\n\nb\n'))).rejects.toThrow(/empty\.vocab:2: empty word/);
    expect(await readVocab(file('crlf.vocab', 'a\r\nb'))).toEqual(['a', 'b']);
    expect(() => writeEmbeddings('-', small, 'npy')).toThrow(/npy output needs a file/);
    expect(() => writeEmbeddings(join(dir, 'bad.npy'), { ...small, words: ['a', 'b\nc'] })).toThrow(
      /cannot go in a one-word-per-line vocabulary/,
    );
  });
});
