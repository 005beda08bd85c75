// The CLI as users and scripts see it: generated help, JSON on stdout, exit codes.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hlm, repoRoot } from './helpers/cli.js';

test('hlm --help lists the commands; devices --help shows generated help with examples', () => {
  const top = hlm(['--help']);
  expect(top.status).toBe(0);
  expect(top.stdout).toMatch(/devices\s+List the WebGPU adapters/);
  expect(top.stdout).toMatch(/check\s+Run every kernel/);
  const dev = hlm(['devices', '--help']);
  expect(dev.status).toBe(0);
  expect(dev.stdout).toMatch(/EXAMPLES[\s\S]*\$ hlm devices --json/);
});

test('hlm devices --json lists the software adapter, says what auto picks, and exits promptly', () => {
  const r = hlm(['devices', '--json']);
  expect(r.status).toBe(0);
  const out = JSON.parse(r.stdout);
  const llvmpipe = out.adapters.find((a: { device: string }) => /llvmpipe/.test(a.device));
  expect(llvmpipe).toMatchObject({ backend: 'opengl', kind: 'software', featureLevel: 'compatibility' });
  expect(llvmpipe.limits.maxStorageBufferBindingSize).toBeGreaterThan(0);
  expect(typeof out.auto).toBe('string');
  if (!(r.ms < 3000)) throw new Error(`hlm devices --json took ${r.ms} ms`);
});

test('hlm check passes on the software adapter and reports a throughput', () => {
  const r = hlm(['check', '--device', 'cpu', '--size', '64', '--reps', '1', '--json']);
  expect(r.status).toBe(0);
  const out = JSON.parse(r.stdout);
  expect(out.ok).toBe(true);
  expect(out.checks.length).toBeGreaterThanOrEqual(15);
  const kernels = out.checks.map((c: { kernel: string }) => c.kernel);
  for (const k of [
    'GPT-2 step, cwt',
    'attention',
    'attention backward',
    'attention, f16 qkv backward',
    'castF16 ×0.75 (binary16 bits)',
    'matmul f16 A·B, split-K Aᵀ',
  ])
    expect(kernels).toContain(k);
  for (const c of out.checks) if (!(c.relErr <= c.tolerance)) throw new Error(`${c.kernel}: ${c.relErr}`);
  expect(out.throughput[0].gflops).toBeGreaterThan(0);
});

test('a WGSL syntax error names the shader file and line, and exits 1', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hlm-wgsl-'));
  try {
    cpSync(join(repoRoot(), 'src/wgsl'), dir, { recursive: true });
    const file = join(dir, 'matmul.wgsl');
    const lines = readFileSync(file, 'utf8').split('\n');
    const at = lines.findIndex((l) => l.includes('let tid ='));
    lines[at] = '  let tid = lid.y * WG_X + ;';
    writeFileSync(file, lines.join('\n'));
    const r = hlm(['check', '--device', 'cpu', '--size', '16'], { HLM_WGSL_DIR: dir });
    expect(r.status).toBe(1);
    expect(r.stderr).toContain(`matmul.wgsl:${at + 1}:`);
    expect(r.stderr).toMatch(/error/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('an unknown --device names what was probed, and exits 1', () => {
  const r = hlm(['check', '--device', 'no-such-adapter']);
  expect(r.status).toBe(1);
  expect(r.stderr).toMatch(/no adapter matches "no-such-adapter"[\s\S]*opengl/);
});

test('hlm pretrain: a tiny run through the CLI prints its result as JSON; bad input exits 1 naming the file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hlm-cli-pretrain-'));
  try {
    const text = join(dir, 'text.txt');
    writeFileSync(text, 'The quick brown fox jumps over the lazy dog. '.repeat(200));
    const env = { HLM_CACHE_DIR: join(dir, 'cache') };
    const small = [
      '--set',
      'n_layer=1',
      '--set',
      'n_embd=8',
      '--set',
      'n_head=2',
      '--set',
      'n_positions=16',
      '--batch-size',
      '2',
      '--seq-len',
      '8',
      '--eval-every',
      '0',
    ];
    const r = hlm(['pretrain', '--data', text, '--out', join(dir, 'run'), '--steps', '2', ...small, '--json'], env);
    expect(r.status).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.steps).toBe(2);
    if (!(out.finalLoss > 0) || !(out.tokensPerSecond > 0)) throw new Error(r.stdout);
    expect(
      readFileSync(join(dir, 'run', 'metrics.jsonl'), 'utf8')
        .trim()
        .split('\n'),
    ).toHaveLength(2);
    const bad = hlm(
      ['pretrain', '--data', join(dir, 'missing.txt'), '--out', join(dir, 'run2'), '--steps', '1', ...small],
      env,
    );
    expect(bad.status).toBe(1);
    expect(bad.stderr).toMatch(/missing\.txt/);
    const bad2 = hlm(['pretrain', '--data', text, '--out', join(dir, 'run3'), '--set', 'n_layerz=2'], env);
    expect(bad2.status).toBe(1);
    expect(bad2.stderr).toMatch(/n_layerz/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
