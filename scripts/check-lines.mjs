// Lint for what ESLint does not read: no line over 120 characters in the WGSL shaders, the
// Python companions and the shell scripts (TypeScript and JavaScript lines are ESLint's); and no
// function-scope WGSL `var x: T;` without its value: write `var x = T();` (lavapipe did not clear a
// loop-scoped one again on each iteration; README, How kernels work).
import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';

const MAX = 120;
const files = execFileSync(
  'git',
  ['ls-files', '--cached', '--others', '--exclude-standard', '*.wgsl', '*.py', '*.sh'],
  {
    encoding: 'utf8',
  },
)
  .split('\n')
  .filter(Boolean);
let bad = 0;
for (const file of files) {
  readFileSync(file, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (file.endsWith('.wgsl') && /^\s+var\s+\w+\s*:[^=]*;/.test(line)) {
        console.error(`${file}:${i + 1}: a function-scope var needs its value: var x = T(); not var x: T;`);
        bad++;
      }
      const n = [...line].length;
      if (n > MAX) {
        console.error(`${file}:${i + 1}: line is ${n} characters (at most ${MAX})`);
        bad++;
      }
    });
}
if (bad) process.exit(1);
