// Build: compile TypeScript (src and test) into dist/, copy the WGSL shader sources next to
// the compiled kernels (dist/src/wgsl) and the JSON schemas (bench records, experiment results) beside their readers,
// then regenerate oclif.manifest.json from the commands.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
// HLM_OUT builds into another folder inside the project (e.g. .out/mine), so that several
// builds and test runs can share one checkout without deleting each other's output.
const out = join(root, process.env.HLM_OUT ?? 'dist');
rmSync(out, { recursive: true, force: true });
execFileSync(
  process.execPath,
  [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.json'), '--outDir', out],
  { stdio: 'inherit' },
);
cpSync(join(root, 'src/wgsl'), join(out, 'src/wgsl'), { recursive: true });
cpSync(join(root, 'src/bench/hlm.bench.schema.json'), join(out, 'src/bench/hlm.bench.schema.json'));
cpSync(join(root, 'src/report/hlm.experiment.schema.json'), join(out, 'src/report/hlm.experiment.schema.json'));
if (process.env.HLM_OUT) process.exit(0);

// The manifest lets oclif list commands without importing them all (fast `hlm --help`).
const { Plugin } = await import('@oclif/core');
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
writeFileSync(join(root, 'oclif.manifest.json'), JSON.stringify(plugin.manifest, null, 2) + '\n');
console.error(`build: ${Object.keys(plugin.manifest.commands).length} commands in oclif.manifest.json`);
