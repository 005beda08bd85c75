#!/usr/bin/env node
// Each linear layer's products inside the train step beside the same products timed alone (issue 14: within 10%).
// Reads what one bench/gpu-run.sh call writes: the train stage's `--top` listing (each dispatch's GPU time per
// repetition, from timestamp queries) and the matmul stage's kernel records, and prints a markdown table:
//   node bench/instep-compare.mjs <hlm-train-top.txt> <hlm-matmul.jsonl> [--tolerance 0.1]
// A product's in-step time is the sum of its dispatches (split-K parts and their sum, K spans), averaged over the
// layers and over the steps listed (CE and CWT share the blocks). The forward's in-step dispatch also applies its
// epilogue (bias, GELU, residual), which the kernel records' plain products do not.
import { readFileSync } from 'node:fs';

const args = process.argv.slice(2);
const t = args.indexOf('--tolerance');
const tolerance = t >= 0 ? Number(args.splice(t, 2)[1]) : 0.1;
const [topFile, recordsFile] = args;
function fail(message) {
  console.error(`instep-compare: ${message}`);
  process.exit(1);
}
if (!topFile || !recordsFile || !(tolerance > 0))
  fail('usage: node bench/instep-compare.mjs <train --top text> <kernel records .jsonl> [--tolerance 0.1]');

const read = (file) => {
  try {
    return readFileSync(file, 'utf8');
  } catch (e) {
    return fail(`${file}: ${e.code === 'ENOENT' ? 'no such file' : e.message}`);
  }
};

// Kernel records: `<layer> <pass> MxNxK <transposes>` → GFLOP/s and shape.
const isolated = new Map();
read(recordsFile)
  .split('\n')
  .forEach((line, i) => {
    if (!line.trim()) return;
    let r;
    try {
      r = JSON.parse(line);
    } catch {
      fail(`${recordsFile}:${i + 1}: not JSON`);
    }
    const m = /^(\S+) (fwd|dx|dW) \d+x\d+x\d+ [NT]{2}$/.exec(r.test ?? '');
    if (r.name !== 'matmul' || !m || r.status !== 'ok') return;
    isolated.set(`${m[1]} ${m[2]}`, { gflops: r.throughput.value, ...r.params });
  });
if (!isolated.size) fail(`${recordsFile}: no layer product records (matmul "<layer> fwd|dx|dW ...", status ok)`);

// The --top listing: a header per step, then `<ms> ms <share>% ×<count> <label>` lines.
const NAMES = { c_attn: 'attn.c_attn', 'attn.c_proj': 'attn.c_proj', c_fc: 'mlp.c_fc', 'mlp.c_proj': 'mlp.c_proj' };
const LABEL =
  /^h(\d+) (c_attn|attn\.c_proj|c_fc|mlp\.c_proj) (x·W.*|dx|dW)(?: \(\d+ K parts\)| sum of K parts| k \d+\.\.\d+)?$/;
const perStep = new Map(); // `<step>|h<l> <layer> <pass>` → ms
let step;
let rows;
read(topFile)
  .split('\n')
  .forEach((line) => {
    const head = /^(\S+ \S+ step (\d+)x(\d+)): GPU time per repetition/.exec(line);
    if (head) {
      step = head[1];
      const n = Number(head[2]) * Number(head[3]);
      if (rows !== undefined && rows !== n) fail(`${topFile}: steps of ${rows} and of ${n} rows; list one shape`);
      rows = n;
      return;
    }
    const d = /^\s*([\d.]+) ms\s+[\d.]+%\s+×\d+\s+(.*)$/.exec(line);
    const m = d && step && LABEL.exec(d[2]);
    if (!m) return;
    const key = `${step}|h${m[1]} ${NAMES[m[2]]} ${m[3].startsWith('x·W') ? 'fwd' : m[3]}`;
    perStep.set(key, (perStep.get(key) ?? 0) + Number(d[1]));
  });
if (!perStep.size) fail(`${topFile}: no layer products (h<l> c_attn|attn.c_proj|c_fc|mlp.c_proj) in the listing`);

const inStep = new Map(); // `<layer> <pass>` → ms of each layer in each step
for (const [key, ms] of perStep) {
  const product = key.split('|')[1].replace(/^h\d+ /, '');
  inStep.set(product, [...(inStep.get(product) ?? []), ms]);
}

const out = [
  `| product | shape | in step, ms (layers) | in step, GFLOP/s | alone, GFLOP/s | in step / alone | |`,
  '| --- | --- | ---: | ---: | ---: | ---: | --- |',
];
let within = 0;
let compared = 0;
for (const [product, times] of [...inStep].sort()) {
  const iso = isolated.get(product);
  if (!iso) {
    out.push(`| ${product} | — | ${mean(times).toFixed(3)} (${times.length}) | — | — | — | not in the records |`);
    continue;
  }
  const stepRows = product.endsWith('dW') ? iso.K : iso.M;
  if (stepRows !== rows) fail(`${product}: the records' product has ${stepRows} rows, the train step ${rows}`);
  const ms = mean(times);
  const gflops = (2 * iso.M * iso.N * iso.K) / (ms * 1e-3) / 1e9;
  const ratio = gflops / iso.gflops;
  const ok = Math.abs(ratio - 1) <= tolerance;
  compared++;
  if (ok) within++;
  const shape = `${iso.M}x${iso.N}x${iso.K}`;
  out.push(
    `| ${product} | ${shape} | ${ms.toFixed(3)} (${times.length}) | ${gflops.toFixed(0)} | ` +
      `${iso.gflops.toFixed(0)} | ${ratio.toFixed(2)} | ${ok ? '' : 'OUTSIDE'} |`,
  );
}
out.push('', `${within} of ${compared} products within ${Math.round(tolerance * 100)}% of their isolated rate`);
console.log(out.join('\n'));

function mean(xs) {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}
