#!/usr/bin/env node
// Writes a large word2vec binary .gz file, laid out as GoogleNews-vectors-negative300.bin.gz is: a
// "V d" header, then per row "word " and d little-endian float32 values and "\n", rows sorted by
// frequency. The first rows are the words of a frequency list in its order, the rest "w<i>"; the
// values are random, so the file barely compresses. For checking that `hlm whiten` streams such
// a file in bounded memory (README, "Files are read as streams").
//   node scripts/big-embeddings.mjs <out.bin.gz> [rows=3000000] [dim=300] [frequency list]
import { Buffer } from 'node:buffer';
import { createWriteStream, readFileSync } from 'node:fs';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';

const [out, rowsArg = '3000000', dimArg = '300', freqs] = process.argv.slice(2);
if (!out) {
  console.error('usage: node scripts/big-embeddings.mjs <out.bin.gz> [rows] [dim] [frequency list]');
  process.exit(2);
}
const rows = Number(rowsArg);
const dim = Number(dimArg);
const known = freqs
  ? readFileSync(freqs, 'utf8')
      .split('\n')
      .map((l) => l.split(/[ \t]/)[0])
      .filter(Boolean)
  : [];

// xorshift32: a fast reproducible stream of values in [-1, 1).
let s = 2463534242;
const next = () => {
  s ^= s << 13;
  s ^= s >>> 17;
  s ^= s << 5;
  return (s >>> 0) / 2 ** 31 - 1;
};

const gzip = createGzip({ level: 1, chunkSize: 1 << 20 });
const done = once(gzip.pipe(createWriteStream(out)), 'finish');
const write = async (b) => {
  if (!gzip.write(b)) await once(gzip, 'drain');
};
await write(Buffer.from(`${rows} ${dim}\n`));
const block = 4096;
const values = new Float32Array(block * dim);
const t0 = performance.now();
for (let r0 = 0; r0 < rows; r0 += block) {
  const n = Math.min(block, rows - r0);
  for (let i = 0; i < n * dim; i++) values[i] = next();
  const parts = [];
  for (let i = 0; i < n; i++) {
    const r = r0 + i;
    parts.push(Buffer.from(`${r < known.length ? known[r] : `w${r}`} `));
    parts.push(Buffer.from(values.buffer, i * dim * 4, dim * 4), Buffer.from('\n'));
  }
  await write(Buffer.concat(parts));
  if ((r0 / block) % 100 === 0) process.stderr.write(`\r${r0 + n} / ${rows} rows`);
}
gzip.end();
await done;
process.stderr.write(
  `\r${rows} rows × ${dim} written to ${out} in ${((performance.now() - t0) / 1000).toFixed(0)} s\n`,
);
