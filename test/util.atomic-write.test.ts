// writeFileAtomic: whole files appear at once, a failure leaves the previous file and no
// temporary behind, links are written through, and filesystem errors name the file.
import {
  chmodSync,
  lstatSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import { writeFileAtomic } from '../src/util/atomic-write.js';

const scratch = () => mkdtempSync(join(tmpdir(), 'hlm-atomic-write-'));

test('text, bytes and bytes in pieces are written whole, with no temporary file left', () => {
  const dir = scratch();
  writeFileAtomic(join(dir, 'a.txt'), 'héllo\n', 'note');
  writeFileAtomic(join(dir, 'b.bin'), Uint8Array.of(1, 2, 3), 'bytes');
  const pieces = function* () {
    yield Uint8Array.of(4);
    yield new Uint8Array(0);
    yield Uint8Array.of(5, 6);
  };
  writeFileAtomic(join(dir, 'c.bin'), pieces(), 'pieces');
  expect(readFileSync(join(dir, 'a.txt'), 'utf8')).toBe('héllo\n');
  expect([...readFileSync(join(dir, 'b.bin'))]).toEqual([1, 2, 3]);
  expect([...readFileSync(join(dir, 'c.bin'))]).toEqual([4, 5, 6]);
  expect(readdirSync(dir).sort()).toEqual(['a.txt', 'b.bin', 'c.bin']);
});

test('a replaced file keeps its permissions; a symbolic link stays a link to the new contents', () => {
  const dir = scratch();
  const file = join(dir, 'result.json');
  writeFileSync(file, 'old');
  chmodSync(file, 0o640);
  writeFileAtomic(file, 'new', 'result');
  expect(readFileSync(file, 'utf8')).toBe('new');
  expect(statSync(file).mode & 0o777).toBe(0o640);

  const link = join(dir, 'latest.json');
  symlinkSync('result.json', link);
  writeFileAtomic(link, 'newer', 'result');
  expect(lstatSync(link).isSymbolicLink()).toBe(true);
  expect(readlinkSync(link)).toBe('result.json');
  expect(readFileSync(file, 'utf8')).toBe('newer');
  expect(readdirSync(dir).sort()).toEqual(['latest.json', 'result.json']);
});

test('a failure while writing leaves the previous file and no temporary; the error is not rewrapped', () => {
  const dir = scratch();
  const file = join(dir, 'shard.bin');
  writeFileSync(file, 'previous');
  const failing = function* () {
    yield Uint8Array.of(1, 2);
    throw new RangeError('token 70000 does not fit');
  };
  expect(() => writeFileAtomic(file, failing(), 'token shard')).toThrow(RangeError);
  expect(readFileSync(file, 'utf8')).toBe('previous');
  expect(readdirSync(dir)).toEqual(['shard.bin']);
});

test('a filesystem error is one HlmError naming what was written and where', () => {
  const dir = scratch();
  const missing = join(dir, 'no-such-dir', 'result.json');
  let err: unknown;
  try {
    writeFileAtomic(missing, '{}', 'GLUE result');
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(HlmError);
  expect((err as Error).message).toMatch(/^cannot write GLUE result .*no-such-dir\/result\.json: ENOENT/);

  // A directory in the way: refused, and the directory is untouched.
  expect(() => writeFileAtomic(dir, 'x', 'bench report')).toThrow(/^cannot write bench report .*: E/);
  expect(statSync(dir).isDirectory()).toBe(true);
  expect(readdirSync(dir)).toEqual([]);
});
