// Errors and outputs as users and scripts meet them (issue 16): a full disk while writing is one
// `hlm:` line naming the file and what was written, and --json errors carry the message (8);
// command-line mistakes are one line plus a hint, exit 1 as the README says; outputs that cannot
// be written are refused before any work (5); hlm sets a private XDG_RUNTIME_DIR when none is set,
// and the README's first command works as root and as a user (11, 12).
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hlm, repoRoot } from './helpers/cli.js';
import { tinyRun } from './helpers/tiny-run.js';
import { ensureRuntimeDir } from '../src/util/runtime-dir.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-errors-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const lines = (s: string) => s.trim().split('\n');

test('8: a full disk under metrics.jsonl: one hlm: line naming the file; --json: an error with a message', () => {
  const env = { HLM_CACHE_DIR: join(dir, 'cache') };
  const tiny = tinyRun(dir, env);
  const run = ['pretrain', ...tiny.model];
  const out = join(dir, 'full');
  expect(hlm([...run, '--tokenizer', tiny.tokenizer, '--steps', '2', '--out', out], env).status).toBe(0);
  // /dev/full fails every write with ENOSPC, as a full disk does.
  rmSync(join(out, 'metrics.jsonl'));
  symlinkSync('/dev/full', join(out, 'metrics.jsonl'));
  const r = hlm([...run, '--steps', '4', '--out', out, '--resume'], env);
  expect(r.status).toBe(1);
  const message = `cannot write metrics ${join(out, 'metrics.jsonl')}: ENOSPC: no space left on device, write`;
  expect(lines(r.stderr).filter((l) => !l.startsWith('Warning:'))).toEqual([`hlm: ${message}`]);
  const j = hlm([...run, '--steps', '4', '--out', out, '--resume', '--json'], env);
  expect(j.status).toBe(1);
  expect(JSON.parse(j.stdout)).toEqual({ error: { name: 'HlmError', message } });
});

test('command-line mistakes: one hlm: line and a hint (exit 1), not the whole help', () => {
  const r = hlm(['pretrain', '--save-evry', '3']);
  expect(r.status).toBe(1);
  expect(lines(r.stderr)).toEqual([
    'hlm: Nonexistent flag: --save-evry (did you mean --save-every?)',
    'hint: `hlm pretrain --help` lists every flag',
  ]);
  const missing = hlm(['finetune-glue', '--model', 'x']);
  expect(missing.status).toBe(1);
  expect(lines(missing.stderr)[0]).toBe('hlm: Missing required flag task');
  expect(lines(hlm(['tokenizer', 'train', '--data', 'x']).stderr)).toEqual([
    'hlm: Missing required flag out',
    'hint: `hlm tokenizer train --help` lists every flag',
  ]);
  expect(lines(hlm(['pretrain', '--steps']).stderr)[0]).toBe('hlm: Flag --steps expects a value');
  const j = hlm(['pretrain', '--arch', 'rnn', '--json']);
  expect(j.status).toBe(1);
  expect(JSON.parse(j.stdout)).toEqual({
    error: { name: 'UsageError', message: 'Expected --arch=rnn to be one of: decoder, encoder' },
  });
  // The README promises exit 1 for user errors, these included.
  expect(readFileSync(join(repoRoot(), 'README.md'), 'utf8')).toMatch(
    /A user error prints one line, `hlm: …`, and exits 1/,
  );
});

test('5: outputs that cannot be written are refused before any input is read or any work done', () => {
  const file = join(dir, 'plain-file');
  writeFileSync(file, 'x');
  const w = hlm(
    ['whiten', '--embeddings', join(dir, 'none.txt'), '--frequencies', join(dir, 'none.freq'), '--out'].concat([
      join(file, 'out.txt'),
    ]),
  );
  expect(w.status).toBe(1);
  expect(lines(w.stderr).at(-1)).toMatch(
    /^hlm: cannot write whitened embeddings .*plain-file\/out\.txt: .*plain-file is not a directory$/,
  );
  const e = hlm(
    ['eval-lambada', '--model', join(dir, 'none'), '--data', join(dir, 'none.jsonl'), '--predictions'].concat([
      join(dir, 'no-dir', 'p.jsonl'),
    ]),
  );
  expect(e.status).toBe(1);
  expect(lines(e.stderr).at(-1)).toMatch(
    /^hlm: cannot write LAMBADA predictions .*p\.jsonl: directory .*no-dir does not exist$/,
  );
  const b = hlm(['bench', '--suite', 'kernel', '--quick', '--out', dir]);
  expect(b.status).toBe(1);
  expect(lines(b.stderr).at(-1)).toBe(`hlm: cannot write bench report ${dir}: it is a directory`);
  // A directory hlm may not write in: read-only for a user; root writes anywhere but in /proc.
  let locked = join(dir, 'read-only');
  mkdirSync(locked);
  chmodSync(locked, 0o555);
  if (process.getuid?.() === 0) locked = '/proc/self';
  const t = hlm(['tokenizer', 'train', '--data', file, '--out', join(locked, 'tok.json')]);
  expect(t.status).toBe(1);
  expect(lines(t.stderr).at(-1)).toMatch(/^hlm: cannot write tokenizer .*tok\.json: E[A-Z]+: /);
});

test('11: hlm sets a private XDG_RUNTIME_DIR when none is set, and leaves a set one alone', () => {
  const saved = process.env.XDG_RUNTIME_DIR;
  try {
    delete process.env.XDG_RUNTIME_DIR;
    const made = ensureRuntimeDir()!;
    expect(made).toBe(join(tmpdir(), `hlm-runtime-${process.getuid?.()}`));
    expect(process.env.XDG_RUNTIME_DIR).toBe(made);
    expect(statSync(made).mode & 0o777).toBe(0o700);
    expect(ensureRuntimeDir()).toBeUndefined();
  } finally {
    if (saved === undefined) delete process.env.XDG_RUNTIME_DIR;
    else process.env.XDG_RUNTIME_DIR = saved;
  }
  // Through the CLI, in a temporary directory of its own: looking for adapters makes the private directory...
  const tmp = mkdtempSync(join(dir, 'cli-tmp-'));
  const env: Record<string, string> = { ...(process.env as Record<string, string>), TMPDIR: tmp };
  delete env.XDG_RUNTIME_DIR;
  const devices = () => spawnSync(process.execPath, [join(repoRoot(), 'bin/run.js'), 'devices', '--json'], { env });
  expect(devices().status).toBe(0);
  const mine = join(tmp, `hlm-runtime-${process.getuid?.()}`);
  expect(statSync(mine).mode & 0o777).toBe(0o700);
  // ... and does not use one that others could read: it makes a fresh one beside it.
  chmodSync(mine, 0o755);
  expect(devices().status).toBe(0);
  const fresh = readdirSync(tmp).filter((n) => /^hlm-runtime-[A-Za-z0-9]{6}$/.test(n) && join(tmp, n) !== mine);
  expect(fresh).toHaveLength(1);
  expect(statSync(join(tmp, fresh[0])).mode & 0o777).toBe(0o700);
  expect(statSync(mine).mode & 0o777).toBe(0o755);
});

test("12: the README's first command installs the system packages as root (no sudo) and as a user (sudo)", () => {
  const readme = readFileSync(join(repoRoot(), 'README.md'), 'utf8');
  const first = readme.split('```sh')[1].split('```')[0];
  expect(first).toMatch(
    /^sh scripts\/install-system-deps\.sh && npm ci && npm run build && \.\/bin\/run\.js pretrain/m,
  );
  expect(first).not.toMatch(/^sudo /m);
  // Stand-ins record what the script runs. dpkg and dpkg-query answer from a marker file that apt-get's install
  // writes (holding the Mesa version it "installed", $FAKE_MESA); id says who we are. The OS and apt's sources are
  // files of the test's own (HLM_OS_RELEASE, HLM_APT_SOURCES). The private lavapipe with cooperative matrices
  // (scripts/install-lavapipe-coopmat.sh, HLM_COOPMAT_PREFIX) is a stand-in prefix, complete unless a case removes
  // its marker; uname says amd64.
  const bin = join(dir, 'stub-bin');
  mkdirSync(bin);
  const log = join(dir, 'calls.log');
  const marker = join(dir, 'mesa-installed');
  const sources = join(dir, 'sources.list.d');
  const osRelease = join(dir, 'os-release');
  const stub = (name: string, body: string) => {
    writeFileSync(join(bin, name), `#!/bin/sh\n${body}\n`);
    chmodSync(join(bin, name), 0o755);
  };
  stub('dpkg', `[ "$1" = --compare-versions ] && exec /usr/bin/dpkg "$@"; [ -f ${marker} ]`);
  stub('dpkg-query', `[ -f ${marker} ] && cat ${marker}`);
  stub('id', 'echo "$FAKE_UID"');
  stub('apt-get', `echo "apt-get $*" >> ${log}; case "$*" in *install*) printf %s "$FAKE_MESA" > ${marker};; esac`);
  stub('sudo', `echo "sudo $1" >> ${log}; "$@"`);
  stub('uname', 'echo x86_64');
  const coopmat = join(dir, 'lavapipe-coopmat');
  const coopmatLib = join(coopmat, 'root/usr/lib/x86_64-linux-gnu');
  mkdirSync(coopmatLib, { recursive: true });
  writeFileSync(join(coopmatLib, 'libvulkan_lvp.so'), 'VK_KHR_cooperative_matrix');
  writeFileSync(join(coopmatLib, 'ld-linux-x86-64.so.2'), '');
  chmodSync(join(coopmatLib, 'ld-linux-x86-64.so.2'), 0o755);
  writeFileSync(join(coopmat, 'lvp_icd.json'), '{}');
  const coopmatMarker = join(coopmat, '.installed');
  const mesa26 = '26.1.6-1~bpo13+1';
  const coopmatInstalled = `already installed: lavapipe (Mesa ${mesa26}, VK_KHR_cooperative_matrix) in ${coopmat}\n`;
  const script = join(repoRoot(), 'scripts', 'install-system-deps.sh');
  const run = (uid: string, os: string, mesa = '25.0.7-2~bpo12+1', coopmatDone = true) => {
    for (const f of [log, marker, sources, join(coopmat, 'apt')]) rmSync(f, { recursive: true, force: true });
    mkdirSync(sources);
    writeFileSync(osRelease, os);
    if (coopmatDone) writeFileSync(coopmatMarker, `${mesa26}\n`);
    else rmSync(coopmatMarker, { force: true });
    const env = { PATH: `${bin}:/usr/bin:/bin`, FAKE_UID: uid, FAKE_MESA: mesa, HLM_COOPMAT_PREFIX: coopmat };
    const r = spawnSync('sh', [script], {
      env: { ...env, HLM_OS_RELEASE: osRelease, HLM_APT_SOURCES: sources },
      encoding: 'utf8',
    });
    return { status: r.status, stderr: r.stderr, calls: existsSync(log) ? lines(readFileSync(log, 'utf8')) : [] };
  };
  const pkgs = 'libegl1 libegl-mesa0 libgl1-mesa-dri mesa-vulkan-drivers libvulkan1';
  const bookworm = 'ID=debian\nVERSION_CODENAME=bookworm\n';
  const backports = `apt-get install -y --no-install-recommends -t bookworm-backports ${pkgs}`;
  // Debian 12: bookworm-backports added to apt's sources, Mesa taken from it; as root, then through sudo.
  expect(run('0', bookworm)).toEqual({ status: 0, stderr: '', calls: ['apt-get update -qq', backports] });
  expect(readFileSync(join(sources, 'bookworm-backports.sources'), 'utf8')).toMatch(/^Suites: bookworm-backports$/m);
  expect(run('1000', bookworm)).toEqual({
    status: 0,
    stderr: '',
    calls: ['sudo tee', 'sudo apt-get', 'apt-get update -qq', 'sudo apt-get', backports],
  });
  // Elsewhere (Debian 13, Ubuntu 24.04) the release's own Mesa.
  expect(run('0', 'ID=debian\nVERSION_CODENAME=trixie\n').calls).toEqual([
    'apt-get update -qq',
    `apt-get install -y --no-install-recommends ${pkgs}`,
  ]);
  // No private lavapipe yet: its script installs it (through sudo as a user) with an apt configuration of its own,
  // and its failure (here: the stand-in apt-get resolves no packages) is the script's.
  const trixie = 'ID=debian\nVERSION_CODENAME=trixie\n';
  const coopmatApt = `apt-get -c ${join(coopmat, 'apt', 'apt.conf')}`;
  expect(run('1000', trixie, undefined, false)).toEqual({
    status: 1,
    stderr: `install-lavapipe-coopmat.sh: apt-get found no packages to install for mesa-vulkan-drivers=${mesa26}\n`,
    calls: [
      'sudo apt-get',
      'apt-get update -qq',
      'sudo apt-get',
      `apt-get install -y --no-install-recommends ${pkgs}`,
      'sudo env',
      `${coopmatApt} update -qq --error-on=any`,
      `${coopmatApt} -s install mesa-vulkan-drivers=${mesa26}`,
    ],
  });
  expect(readFileSync(join(coopmat, 'apt', 'sources.list'), 'utf8')).toMatch(/ trixie-backports main$/m);
  // A Mesa older than 24 after the install is an error that says so.
  const old = run('0', 'ID=ubuntu\nVERSION_CODENAME=jammy\n', '22.0.5-0ubuntu0.1');
  expect(old.status).toBe(1);
  expect(old.stderr).toMatch(/Mesa 24 or newer was not installed \(found 22\.0\.5-0ubuntu0\.1\)/);
  // Installed already: nothing to do.
  writeFileSync(marker, '25.0.7-2~bpo12+1');
  writeFileSync(coopmatMarker, `${mesa26}\n`);
  const again = spawnSync('sh', [script], {
    env: {
      PATH: `${bin}:/usr/bin:/bin`,
      FAKE_UID: '0',
      HLM_OS_RELEASE: osRelease,
      HLM_APT_SOURCES: sources,
      HLM_COOPMAT_PREFIX: coopmat,
    },
    encoding: 'utf8',
  });
  expect([again.status, again.stdout]).toEqual([
    0,
    `already installed: ${pkgs} (Mesa 25.0.7-2~bpo12+1)\n${coopmatInstalled}`,
  ]);
});
