// The lent-GPU call's two scripts (issue 14), with no GPU: bench/gpu-prep.sh packs, tokenises and sizes the call
// here, and bench/gpu-run.sh runs its stages within a deadline and leaves two files for the device tool to fetch.
// gpu-run.sh's commands are stand-ins that record their arguments; gpu-prep.sh's pack.sh is a stand-in, its shards
// are real (bench/make-shard.mjs on the build).
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from './helpers/cli.js';
import { readShard } from '../src/data/shards.js';
import { gpt2Tokenizer } from '../src/data/gpt2-tokenizer.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-gpu-scripts-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (s: string) => s.split('\n').filter(Boolean);
function script(path: string, body: string): void {
  writeFileSync(path, `#!/bin/sh\n${body}\n`);
  chmodSync(path, 0o755);
}
function tarList(archive: string): string[] {
  const r = spawnSync('tar', ['-taf', archive], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return lines(r.stdout);
}

test('gpu-prep.sh slims .gpu, makes the shards, and refuses a call over the size limit', async () => {
  const root = join(dir, 'prep');
  mkdirSync(join(root, 'dist/src/commands'), { recursive: true });
  const git = (...args: string[]) => spawnSync('git', args, { cwd: root, encoding: 'utf8' });
  git('init', '-q');
  writeFileSync(join(root, 'package.json'), '{}\n');
  writeFileSync(join(root, 'package-lock.json'), '{}\n');
  writeFileSync(join(root, 'tracked.txt'), 'x'.repeat(1000));
  git('add', 'package.json', 'package-lock.json', 'tracked.txt');
  writeFileSync(join(root, 'dist/src/commands/bench.js'), '// built\n');
  // pack.sh's stand-in: a node_modules archive holding every platform's tokenizers binary, as the real one does.
  const pack = join(dir, 'pack.sh');
  script(
    pack,
    [
      'set -e; mkdir -p .gpu nm/node_modules/tokenizers nm/node_modules/other',
      'for p in linux-x64-gnu darwin-x64 win32-x64-msvc linux-arm64-gnu; do',
      '  echo $p > nm/node_modules/tokenizers/tokenizers.$p.node; done',
      'echo js > nm/node_modules/tokenizers/index.js; echo js > nm/node_modules/other/index.js',
      '(cd nm && tar -cJf ../.gpu/node_modules.tar.xz node_modules) && rm -r nm',
      'echo boot > .gpu/boot.sh; echo "pack.sh ran" >&2',
    ].join('\n'),
  );
  // The shared data's layout: WikiText-2 valid and enwiki's WikiExtractor files.
  const data = join(dir, 'data');
  mkdirSync(join(data, 'corpus/wikitext-2'), { recursive: true });
  mkdirSync(join(data, 'corpus/enwiki'), { recursive: true });
  const valid = ' = Heading = \n\n The valley lies between two ridges . \n';
  writeFileSync(join(data, 'corpus/wikitext-2/valid.txt'), valid);
  const doc = (i: number) =>
    `<doc id="${i}" url="u" title="T${i}">\nT${i}\n\nArticle number ${i} says hello.\n</doc>\n`;
  for (let i = 0; i < 12; i++) writeFileSync(join(data, `corpus/enwiki/wiki_${String(i).padStart(2, '0')}`), doc(i));
  writeFileSync(join(data, 'corpus/enwiki/wiki_63'), doc(63) + doc(64));

  const prep = join(repoRoot(), 'bench', 'gpu-prep.sh');
  const run = (env: Record<string, string> = {}) =>
    spawnSync('bash', [prep], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, PACK: pack, HLM_DATA: data, ...env },
    });

  const r = run();
  expect(r.stderr).toContain('pack.sh ran');
  expect(r.status).toBe(0);
  // Only the linux-x64-gnu tokenizers binary is left; everything else stays.
  expect(
    tarList(join(root, '.gpu/node_modules.tar.xz'))
      .filter((f) => !f.endsWith('/'))
      .sort(),
  ).toEqual([
    'node_modules/other/index.js',
    'node_modules/tokenizers/index.js',
    'node_modules/tokenizers/tokenizers.linux-x64-gnu.node',
  ]);
  // Each shard holds its documents as pretrain would read them: an end-of-text token before each.
  const tok = gpt2Tokenizer();
  const eot = tok.eotId;
  const held = Array.from(readShard(join(root, '.gpudata/wiki63.bin')));
  expect(held.filter((t) => t === eot)).toHaveLength(2);
  expect(await tok.decode(held.filter((t) => t !== eot))).toContain('Article number 64 says hello.');
  expect(Array.from(readShard(join(root, '.gpudata/wikitext-valid.bin')))[0]).toBe(eot);
  expect(Array.from(readShard(join(root, '.gpudata/enwiki12.bin'))).filter((t) => t === eot)).toHaveLength(12);
  expect(lines(readFileSync(join(root, '.git/info/exclude'), 'utf8'))).toContain('/.gpudata/');
  expect(r.stdout).toMatch(/the call sends [\d.]+ MiB of 64\.0 MiB \(bytes: tracked files 1\d{3}, /);
  expect(r.stdout).toContain('carry [".gpu", "dist/src", ".gpudata"]');

  // Again: pack.sh is not rerun while .gpu is newer than package-lock.json, and the shards are kept.
  const again = run();
  expect(again.status).toBe(0);
  expect(again.stderr).not.toContain('pack.sh ran');
  expect(again.stdout).not.toContain('dropped');
  expect(again.stdout).not.toContain('tokens from');

  // Over the limit: one line naming the parts, exit 1.
  const over = run({ TRAVEL_LIMIT: '4000' });
  expect(over.status).toBe(1);
  expect(over.stderr).toMatch(
    /^gpu-prep\.sh: the call would send .* MiB, over the device tool's 0\.0 MiB \(bytes: tracked/,
  );

  // A build older than src/ is refused before anything else.
  mkdirSync(join(root, 'src'));
  writeFileSync(join(root, 'src/x.ts'), '');
  const past = new Date(Date.now() - 60_000);
  utimesSync(join(root, 'dist/src/commands/bench.js'), past, past);
  const stale = run();
  expect(stale.status).toBe(1);
  expect(stale.stderr).toBe('gpu-prep.sh: the build is older than src/x.ts: run npm run build first\n');

  // A missing data file is named.
  rmSync(join(root, 'src'), { recursive: true });
  rmSync(join(root, '.gpudata'), { recursive: true });
  rmSync(join(data, 'corpus/enwiki/wiki_63'));
  const missing = run();
  expect(missing.status).toBe(1);
  expect(missing.stderr).toContain(`${data}/corpus/enwiki/wiki_63: no such file (set HLM_DATA`);
});

test('gpu-run.sh runs its stages within DEADLINE and leaves two files in $OUT', () => {
  const root = join(dir, 'run');
  const bin = join(dir, 'run-bin');
  mkdirSync(join(root, 'bench'), { recursive: true });
  mkdirSync(bin, { recursive: true });
  const calls = join(dir, 'calls.log');
  // node's and python's stand-ins: record the call, write what --out names, print a table for --compare, sleep
  // $STUB_SLEEP seconds in `check`, write a line to stderr for --top. node -e (the sweep's summary) is the real node.
  const stub = [
    `[ "$1" = -e ] && exec "${process.execPath}" "$@"`,
    `echo "$(basename "$0") $*" >> ${calls}`,
    'out=""; prev=""',
    'for a in "$@"; do [ "$prev" = --out ] && out=$a; prev=$a; done',
    '[ -n "$out" ] && echo \'{"schema":"hlm.bench/1"}\' > "$out"',
    'case "$*" in *--compare*) echo "| compare | $* |";; *" check "*) sleep "${STUB_SLEEP:-0}";; esac',
    'case "$*" in *--top*) echo "a --top listing" >&2;; esac',
    'exit 0',
  ].join('\n');
  script(join(bin, 'node'), stub);
  script(join(bin, 'python3'), stub);
  const gpuRun = join(repoRoot(), 'bench', 'gpu-run.sh');
  const run = (env: Record<string, string>) => {
    rmSync(calls, { force: true });
    const out = mkdtempSync(join(dir, 'out-'));
    const res = mkdtempSync(join(dir, 'res-'));
    const r = spawnSync('bash', [gpuRun], {
      cwd: root,
      encoding: 'utf8',
      env: { PATH: `${bin}:/usr/bin:/bin`, OUT: out, RES: res, ...env },
    });
    const made = existsSync(calls) ? lines(readFileSync(calls, 'utf8')) : [];
    return { ...r, out, calls: made };
  };

  // The default stages: issue 14's measurements, PyTorch in fp32 only.
  const all = run({});
  expect(all.status).toBe(0);
  expect(spawnSync('ls', [all.out], { encoding: 'utf8' }).stdout).toBe('gpu-run.log\nhlm-gpu.tgz\n');
  expect(all.calls.slice(0, 3)).toEqual([
    'node bin/run.js devices --json',
    'node bin/run.js check --device gpu --size 4096',
    'node bin/run.js bench --suite train --filter train-small/ --list',
  ]);
  expect(all.calls[3]).toMatch(
    /^python3 bench\/torch_bench\.py .*--precision fp32 --reps 20 --out .*torch-fp32\.jsonl$/,
  );
  expect(all.calls.some((c) => /--precision (bf16|tf32)|--precision f16|pretrain|HLM/.test(c))).toBe(false);
  expect(all.calls).toContainEqual(expect.stringMatching(/^node bin\/run\.js bench --suite train .*--top 400 --out /));
  expect(all.calls).toContainEqual(
    expect.stringMatching(/^node bench\/instep-compare\.mjs \S+hlm-train-top\.txt \S+hlm-matmul\.jsonl$/),
  );
  expect(all.calls).toContainEqual(
    expect.stringMatching(/^node bin\/run\.js bench --suite kernel --filter matmul\/ --size 4096 --device gpu/),
  );
  expect(tarList(join(all.out, 'hlm-gpu.tgz')).sort()).toEqual(
    [
      './',
      './compare-instep.md',
      './compare-matmul.md',
      './compare-train.md',
      './devices.json',
      './hlm-matmul-top.txt',
      './hlm-matmul.jsonl',
      './hlm-train-top.txt',
      './hlm-train.jsonl',
      './torch-fp32.jsonl',
      './torch-matmul.jsonl',
    ].sort(),
  );
  // The tables come last, and the log holds the whole output.
  expect(all.stdout).toMatch(
    /\| compare \| bin\/run\.js bench --from \S+hlm-train\.jsonl[^\n]*\n== \S+ done in \d+ s\n$/,
  );
  expect(readFileSync(join(all.out, 'gpu-run.log'), 'utf8')).toBe(all.stdout);

  // Past the deadline no stage starts: check runs (30 s were left), then sleeps the rest away.
  const late = run({ DEADLINE: '31', STUB_SLEEP: '3' });
  expect(late.status).toBe(0);
  expect(late.calls).toEqual(['node bin/run.js devices --json', 'node bin/run.js check --device gpu --size 4096']);
  for (const s of ['torch', 'train', 'matmul'])
    expect(late.stdout).toMatch(new RegExp(`stage ${s} skipped: \\d+ s left`));
  expect(tarList(join(late.out, 'hlm-gpu.tgz'))).toContain('./devices.json');

  // The pretrain and sweep stages need gpu-prep.sh's shards; without them nothing runs.
  const noData = run({ STAGES: 'check pretrain' });
  expect(noData.status).toBe(2);
  expect(noData.stdout).toBe(
    'gpu-run.sh: .gpudata/enwiki12.bin: no such file; make it here with bash bench/gpu-prep.sh\n',
  );
  expect(noData.calls).toEqual([]);
  expect(run({ STAGES: 'check trian' }).stdout).toBe('gpu-run.sh: unknown stage trian\n');

  // With them, the sweep reports a failed run's message instead of stopping.
  mkdirSync(join(root, '.gpudata'));
  for (const f of ['enwiki12.bin', 'wiki63.bin']) writeFileSync(join(root, '.gpudata', f), '');
  script(
    join(bin, 'node'),
    `[ "$1" = -e ] && exec "${process.execPath}" "$@"\necho '{"error":{"name":"HlmError","message":"out of memory"}}'`,
  );
  const sweep = run({ STAGES: 'sweep', SWEEP_B: '16', SWEEP_LR: '3e-3 6e-3' });
  expect(sweep.status).toBe(0);
  expect(sweep.stdout).toContain('B=16 lr=3e-3: failed: out of memory\nB=16 lr=6e-3: failed: out of memory\n');
});

test('instep-compare.mjs sets each layer product in the step beside the same product alone', () => {
  const top = join(dir, 'top.txt');
  const records = join(dir, 'matmul.jsonl');
  const rec = (test: string, M: number, N: number, K: number, value: number, status = 'ok') =>
    JSON.stringify({ name: 'matmul', test, status, params: { M, N, K }, throughput: { unit: 'GFLOP/s', value } });
  writeFileSync(
    records,
    [
      rec('square 4096x4096x4096 NN', 4096, 4096, 4096, 30000),
      rec('attn.c_attn fwd 8192x1536x512 NN', 8192, 1536, 512, 20000),
      rec('attn.c_attn dW 512x1536x8192 TN', 512, 1536, 8192, 10000),
      rec('mlp.c_fc dx 8192x512x2048 NT', 8192, 512, 2048, 1, 'error'),
    ].join('\n') + '\n',
  );
  // The train stage's --top listing: the CE step, then the CWT step, with other dispatches between.
  writeFileSync(
    top,
    [
      'train-small ce step 16x512: GPU time per repetition 100.000 ms; heaviest dispatches:',
      '     40.000 ms  40.0%  ×1  ce head rows 0..8192 dwte',
      '      0.700 ms   0.7%  ×1  h0 c_attn x·W+b',
      '      0.600 ms   0.6%  ×1  h1 c_attn x·W+b',
      '      0.500 ms   0.5%  ×1  h0 c_attn dW (4 K parts)',
      '      0.100 ms   0.1%  ×1  h0 c_attn dW sum of K parts',
      '      0.600 ms   0.6%  ×1  h1 c_attn dW (4 K parts)',
      '      0.300 ms   0.3%  ×1  h0 c_fc dx',
      '      0.200 ms   0.2%  ×1  adamw 70426624',
      'train-small cwt step 16x512: GPU time per repetition 50.000 ms; heaviest dispatches:',
      '      0.650 ms   0.6%  ×1  h0 c_attn x·W+b',
    ].join('\n') + '\n',
  );
  const script = join(repoRoot(), 'bench', 'instep-compare.mjs');
  const run = (...args: string[]) => spawnSync(process.execPath, [script, ...args], { encoding: 'utf8' });
  const r = run(top, records);
  expect(r.stderr).toBe('');
  expect(r.status).toBe(0);
  expect(lines(r.stdout)).toEqual([
    '| product | shape | in step, ms (layers) | in step, GFLOP/s | alone, GFLOP/s | in step / alone | |',
    '| --- | --- | ---: | ---: | ---: | ---: | --- |',
    // dW: 2·512·1536·8192 flops in 0.6 ms (both layers' parts and sums) = 21,475 GFLOP/s.
    '| attn.c_attn dW | 512x1536x8192 | 0.600 (2) | 21475 | 10000 | 2.15 | OUTSIDE |',
    // fwd: the mean of 0.7, 0.6 and 0.65 ms, over both steps.
    '| attn.c_attn fwd | 8192x1536x512 | 0.650 (3) | 19823 | 20000 | 0.99 |  |',
    '| mlp.c_fc dx | — | 0.300 (1) | — | — | — | not in the records |',
    '1 of 2 products within 10% of their isolated rate',
  ]);
  expect(lines(run(top, records, '--tolerance', '1.2').stdout).pop()).toBe(
    '2 of 2 products within 120% of their isolated rate',
  );

  // Records of another shape than the step's, a listing without layer products, missing files: one line, exit 1.
  const other = join(dir, 'other.jsonl');
  writeFileSync(other, rec('attn.c_attn fwd 4096x1536x512 NN', 4096, 1536, 512, 20000) + '\n');
  expect(run(top, other)).toMatchObject({
    status: 1,
    stderr: "instep-compare: attn.c_attn fwd: the records' product has 4096 rows, the train step 8192\n",
  });
  const empty = join(dir, 'empty.txt');
  writeFileSync(empty, 'train-small ce step 16x512: GPU time per repetition 1.000 ms; heaviest dispatches:\n');
  expect(run(empty, records).stderr).toBe(
    `instep-compare: ${empty}: no layer products (h<l> c_attn|attn.c_proj|c_fc|mlp.c_proj) in the listing\n`,
  );
  expect(run(top, join(dir, 'absent.jsonl')).stderr).toBe(
    `instep-compare: ${join(dir, 'absent.jsonl')}: no such file\n`,
  );
  writeFileSync(other, '{"name":"matmul"}\nnot json\n');
  expect(run(top, other).stderr).toBe(`instep-compare: ${other}:2: not JSON\n`);
});
