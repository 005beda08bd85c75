// Build: compile TypeScript (src and test) into dist/, copy the WGSL shader sources next to
// the compiled kernels (dist/src/wgsl), then regenerate oclif.manifest.json from the commands.
import { execFileSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const require = createRequire(import.meta.url);
rmSync(join(root, 'dist'), { recursive: true, force: true });
execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', join(root, 'tsconfig.json')], { stdio: 'inherit' });
cpSync(join(root, 'src/wgsl'), join(root, 'dist/src/wgsl'), { recursive: true });

// The manifest lets oclif list commands without importing them all (fast `hlm --help`).
const { Plugin } = await import('@oclif/core');
const plugin = new Plugin({ root, type: 'core', ignoreManifest: true, errorOnManifestCreate: true });
await plugin.load();
writeFileSync(join(root, 'oclif.manifest.json'), JSON.stringify(plugin.manifest, null, 2) + '\n');
console.error(`build: ${Object.keys(plugin.manifest.commands).length} commands in oclif.manifest.json`);
