// Runs jest over the compiled tests with the environment dawn.node needs, and ends with
// the plain line "N passed, N failed" that CI reads. Extra arguments go to jest.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const scratch = mkdtempSync(join(tmpdir(), 'hlm-test-'));
const resultFile = join(scratch, 'jest.json');
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
const run = spawnSync(process.execPath, [jest, '--json', `--outputFile=${resultFile}`, ...process.argv.slice(2)], {
  cwd: root,
  env,
  stdio: 'inherit',
});
let passed = 0;
let failed;
try {
  const r = JSON.parse(readFileSync(resultFile, 'utf8'));
  passed = r.numPassedTests;
  failed = r.numFailedTests + r.numRuntimeErrorTestSuites;
} catch {
  failed = 1; // jest died before writing its report
}
rmSync(scratch, { recursive: true, force: true });
console.log(`${passed} passed, ${failed} failed`);
process.exit(run.status === 0 && failed === 0 ? 0 : 1);
