// Runs jest over the compiled tests with the environment dawn.node needs, and ends with
// the plain line "N passed, N failed" that CI reads. Extra arguments go to jest.
// Two phases: first every test but the subgroup-matrix ones, as usual; then the test files whose name contains
// `subgroup-matrix`, in band (jest -i: no worker processes), in this process's child started through
// scripts/lavapipe-coopmat.sh: node under the private prefix's loader, whose lavapipe has cooperative matrices
// (scripts/install-lavapipe-coopmat.sh). A phase with no test files matching the arguments is skipped.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const scratch = mkdtempSync(join(tmpdir(), 'hlm-test-'));
const env = {
  ...process.env,
  EGL_PLATFORM: 'surfaceless', // Mesa's EGL without a display: the software adapter's OpenGL
  XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? scratch,
  NODE_OPTIONS: `${process.env.NODE_OPTIONS ?? ''} --experimental-vm-modules --no-warnings`.trim(),
};
// HLM_TEST_DEVICE=swiftshader: the Vulkan loader reads its ICD list from the environment,
// which must be set here for the same reason as EGL_PLATFORM.
const swiftshader = '/usr/lib/chromium/vk_swiftshader_icd.json';
if (/swiftshader/i.test(process.env.HLM_TEST_DEVICE ?? '') && !env.VK_ICD_FILENAMES && existsSync(swiftshader))
  env.VK_ICD_FILENAMES = swiftshader;
const jest = join(root, 'node_modules/jest/bin/jest.js');
const args = process.argv.slice(2);
const matrixFile = 'subgroup-matrix[^/]*$'; // a test file of the second phase, by its name
// Jest's own reading of the arguments (path patterns, config) says which files each phase would run. The ignore
// patterns come before a plain flag: jest reads every word after --testPathIgnorePatterns as another pattern.
const ignore = (pattern) => ['--testPathIgnorePatterns=/node_modules/', `--testPathIgnorePatterns=${pattern}`];
let files = [];
const list = spawnSync(process.execPath, [jest, '--listTests', '--json', ...args], {
  cwd: root,
  env,
  encoding: 'utf8',
});
try {
  files = JSON.parse(list.stdout);
} catch {
  // jest refused the arguments: the first phase runs and says why
}
const matrixFiles = files.filter((f) => new RegExp(matrixFile).test(f));
const phases = [];
if (matrixFiles.length < files.length || !files.length) phases.push({ name: 'main', cmd: [process.execPath, jest] });
if (matrixFiles.length) {
  const cmd = ['sh', join(root, 'scripts/lavapipe-coopmat.sh'), jest, '-i'];
  const note = `scripts/test.mjs: ${matrixFiles.length} subgroup-matrix test file(s), in band on the private lavapipe`;
  phases.push({ name: 'subgroup-matrix', cmd, note });
}
let passed = 0;
let failed = 0;
let ok = true;
for (const phase of phases) {
  const resultFile = join(scratch, `${phase.name}.json`);
  const only = phase.name === 'main' ? matrixFile : `^(?!.*${matrixFile})`;
  const [cmd, ...rest] = phase.cmd;
  if (phase.note) console.log(phase.note);
  const run = spawnSync(cmd, [...rest, ...ignore(only), '--json', `--outputFile=${resultFile}`, ...args], {
    cwd: root,
    env,
    stdio: 'inherit',
  });
  ok &&= run.status === 0;
  try {
    const r = JSON.parse(readFileSync(resultFile, 'utf8'));
    passed += r.numPassedTests;
    const f = r.numFailedTests + r.numRuntimeErrorTestSuites;
    failed += f;
    ok &&= f === 0;
  } catch {
    failed += 1; // jest died before writing its report (or the private lavapipe is missing: the wrapper said so)
    ok = false;
  }
}
rmSync(scratch, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(ok ? 0 : 1);
