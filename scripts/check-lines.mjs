// Lint for what ESLint does not read: no line over 120 characters in the WGSL shaders, the
// Python companions and the shell scripts (TypeScript and JavaScript lines are ESLint's).
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
      const n = [...line].length;
      if (n > MAX) {
        console.error(`${file}:${i + 1}: line is ${n} characters (at most ${MAX})`);
        bad++;
      }
    });
}
if (bad) process.exit(1);
