// The run lock: one holder at a time; a holder that is gone (its pid dead, or reused by another
// process) is taken over and reported; one on another host is refused with the path to remove;
// release removes only the caller's own lock.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { acquireLock } from '../src/util/lock.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'hlm-lock-'));
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const holder = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

test('one holder at a time; release removes the lock; nothing else is left behind', () => {
  const path = join(dir, 'a.lock');
  const lock = acquireLock(path, 'run directory a');
  expect(holder(path)).toMatchObject({ pid: process.pid, host: hostname() });
  expect(() => acquireLock(path, 'run directory a')).toThrow(
    new RegExp(`^run directory a is in use by another run: pid ${process.pid} \\(since .*, lock ${path}\\)`),
  );
  lock.release();
  expect(existsSync(path)).toBe(false);
  // A release after another process took the lock leaves theirs alone.
  const again = acquireLock(path, 'a');
  writeFileSync(path, JSON.stringify({ pid: 1, host: hostname(), started: 'x' }));
  again.release();
  expect(holder(path).pid).toBe(1);
  rmSync(path);
  expect(readdirSync(dir)).toEqual([]);
});

test('a dead holder, a reused pid and an unreadable lock are taken over; another host is refused', () => {
  const path = join(dir, 'b.lock');
  const dead = spawnSync(process.execPath, ['-e', 'process.exit(0)']).pid;
  writeFileSync(path, JSON.stringify({ pid: dead, host: hostname(), started: '2026-01-01T00:00:00Z' }));
  const a = acquireLock(path, 'b');
  expect(a.tookOver).toMatchObject({ pid: dead, started: '2026-01-01T00:00:00Z' });
  a.release();
  // Our own pid with another start time: the pid was reused, the holder is gone.
  writeFileSync(path, JSON.stringify({ pid: process.pid, host: hostname(), started: 'old', start_ticks: 1 }));
  const b = acquireLock(path, 'b');
  expect(b.tookOver?.started).toBe('old');
  b.release();
  writeFileSync(path, 'not json');
  const c = acquireLock(path, 'b');
  expect(c.tookOver).toBeDefined();
  c.release();
  writeFileSync(path, JSON.stringify({ pid: 4242, host: 'elsewhere', started: 'then' }));
  expect(() => acquireLock(path, 'run directory b')).toThrow(
    `run directory b is locked by pid 4242 on host elsewhere (since then); if that run has ended, remove ${path}`,
  );
  expect(readdirSync(dir)).toEqual(['b.lock']);
});
