import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readdirSync,
  renameSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { initParams } from '../src/model/params.js';
import { loadCheckpoint, recoverCheckpoint, saveCheckpoint, type CheckpointContents } from '../src/model/checkpoint.js';

const CONFIG: ModelConfig = { ...preset('tiny'), vocab_size: 128, n_positions: 8, n_embd: 16, n_head: 2, n_layer: 1 };
const same = (a: Float32Array, b: Float32Array) =>
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

function setup() {
  const parent = mkdtempSync(join(tmpdir(), 'hlm-atomic-'));
  return { parent, target: join(parent, 'ckpt') };
}

const A = () => ({ config: CONFIG, params: initParams(CONFIG, 1), hlm: { step: 100 }, tokenizerJson: '{"a":1}' });
const B = () => ({ config: CONFIG, params: initParams(CONFIG, 2), hlm: { step: 200 } });

async function expectCheckpoint(dir: string, want: CheckpointContents): Promise<void> {
  const got = await loadCheckpoint(dir);
  expect(same(got.params, want.params)).toBe(true);
  expect(got.hlm).toEqual(want.hlm);
  expect(got.tokenizerJson).toBe(want.tokenizerJson);
}

test('a new checkpoint replaces the old one completely, leaving nothing beside it', async () => {
  const { parent, target } = setup();
  await saveCheckpoint(target, A());
  await expectCheckpoint(target, A());
  await saveCheckpoint(target, B());
  await expectCheckpoint(target, B()); // tokenizer.json of A is gone too
  expect(readdirSync(parent)).toEqual(['ckpt']);
  expect(readdirSync(target).sort()).toEqual(['config.json', 'model.safetensors']);
});

test('a failure mid-write leaves the previous checkpoint intact and no half-written directory', async () => {
  const { parent, target } = setup();
  await saveCheckpoint(target, A());
  const before = readFileSync(join(target, 'model.safetensors'));
  // The tokenizer is written after config.json and model.safetensors: fail there.
  const failing = {
    ...B(),
    get tokenizerJson(): string {
      throw new Error('disk full');
    },
  };
  await expect(saveCheckpoint(target, failing)).rejects.toThrow('disk full');
  expect(readFileSync(join(target, 'model.safetensors')).equals(before)).toBe(true);
  await expectCheckpoint(target, A());
  expect(readdirSync(parent)).toEqual(['ckpt']);

  // With no previous checkpoint, a failed save leaves no target at all.
  const fresh = join(parent, 'fresh');
  await expect(
    saveCheckpoint(fresh, { ...B(), extraFiles: { 'run.json': 42 as unknown as string } }),
  ).rejects.toThrow();
  expect(existsSync(fresh)).toBe(false);
  expect(readdirSync(parent)).toEqual(['ckpt']);
});

test('bad input is refused before anything is written', async () => {
  const { parent, target } = setup();
  await expect(saveCheckpoint(target, { config: CONFIG, params: new Float32Array(10) })).rejects.toThrow(
    /parameter buffer holds 10 floats; the layout needs \d+/,
  );
  const params = initParams(CONFIG, 1);
  await expect(
    saveCheckpoint(target, {
      config: CONFIG,
      params,
      optimizer: { step: 1, m: new Float32Array(params.length), v: new Float32Array(3) },
    }),
  ).rejects.toThrow(/optimizer moment v holds 3 floats/);
  await expect(
    saveCheckpoint(target, { config: CONFIG, params, optimizer: { step: -1, m: params, v: params } }),
  ).rejects.toThrow(/step must be a non-negative integer/);
  await expect(saveCheckpoint(target, { config: CONFIG, params, extraFiles: { '../x': 'y' } })).rejects.toThrow(
    /must be a plain file name/,
  );
  await expect(saveCheckpoint(target, { config: CONFIG, params, extraFiles: { 'config.json': 'y' } })).rejects.toThrow(
    /must be a plain file name other than/,
  );
  await expect(saveCheckpoint(target, { config: { ...CONFIG, n_head: 3 }, params })).rejects.toThrow(
    /n_embd \(16\) must be divisible by n_head \(3\)/,
  );
  expect(readdirSync(parent)).toEqual([]);
});

test('a directory that is not a checkpoint is never replaced', async () => {
  const { parent, target } = setup();
  mkdirSync(target);
  writeFileSync(join(target, 'metrics.jsonl'), '{"step":1}\n');
  await expect(saveCheckpoint(target, A())).rejects.toThrow(HlmError);
  await expect(saveCheckpoint(target, A())).rejects.toThrow(
    /refusing to replace .*ckpt: it holds 'metrics.jsonl', which is not a file of this checkpoint/,
  );
  expect(readdirSync(target)).toEqual(['metrics.jsonl']);
  const withSub = join(parent, 'sub');
  mkdirSync(join(withSub, 'step-100'), { recursive: true });
  writeFileSync(join(withSub, 'config.json'), '{}');
  await expect(saveCheckpoint(withSub, A())).rejects.toThrow(/it holds 'step-100'/);
  const file = join(parent, 'file');
  writeFileSync(file, 'x');
  await expect(saveCheckpoint(file, A())).rejects.toThrow(/exists and is not a directory/);
  // An empty directory, and extra files this save also writes, are fine.
  const empty = join(parent, 'empty');
  mkdirSync(empty);
  await saveCheckpoint(empty, { ...A(), extraFiles: { 'run.json': '{}' } });
  await saveCheckpoint(empty, { ...B(), extraFiles: { 'run.json': '{"x":1}' } });
  expect(readFileSync(join(empty, 'run.json'), 'utf8')).toBe('{"x":1}');
  expect(readdirSync(parent).filter((n) => n.startsWith('.'))).toEqual([]);
});

test('a save that died between its two renames is recovered by the next load and save', async () => {
  const { parent, target } = setup();
  await saveCheckpoint(target, A());
  // The state right after `rename(target, old)`: the complete old checkpoint aside, no target.
  const old = join(parent, '.ckpt.hlm-old');
  renameSync(target, old);
  const loaded = await loadCheckpoint(target);
  expect(loaded.dir).toBe(old);
  await expectCheckpoint(target, A());
  await saveCheckpoint(target, B());
  await expectCheckpoint(target, B());
  expect(readdirSync(parent)).toEqual(['ckpt']);

  // A leftover old copy beside a complete target (died before deleting it) is ignored, then cleaned up.
  mkdirSync(old);
  writeFileSync(join(old, 'config.json'), 'garbage');
  await expectCheckpoint(target, B());
  await saveCheckpoint(target, A());
  await expectCheckpoint(target, A());
  expect(readdirSync(parent)).toEqual(['ckpt']);
});

test('a full disk during a save names the checkpoint and the file, and leaves the previous checkpoint', async () => {
  const { parent, target } = setup();
  await saveCheckpoint(target, A());
  // A real ENOSPC, from /dev/full, raised while the save writes run.json.
  let enospc: unknown;
  const fd = openSync('/dev/full', 'w');
  try {
    writeSync(fd, Buffer.from('x'));
  } catch (e) {
    enospc = e;
  } finally {
    closeSync(fd);
  }
  expect((enospc as NodeJS.ErrnoException).code).toBe('ENOSPC');
  const failing = {
    [Symbol.iterator]: () => {
      throw enospc;
    },
  } as unknown as Uint8Array;
  await expect(saveCheckpoint(target, { ...B(), extraFiles: { 'run.json': failing } })).rejects.toThrow(
    new RegExp(
      `^cannot save checkpoint ${target}: cannot write checkpoint file ${parent}/\\.ckpt\\.tmp-[0-9a-f]+/run\\.json: ` +
        'ENOSPC: no space left on device, write$',
    ),
  );
  await expectCheckpoint(target, A());
  expect(readdirSync(parent)).toEqual(['ckpt']);
});

test('checkpoint directories get the usual permissions, not mkdtemp 0700', async () => {
  const { target } = setup();
  await saveCheckpoint(target, A());
  expect(statSync(target).mode & 0o777).toBe(0o777 & ~process.umask());
});

test('recoverCheckpoint restores the newest complete checkpoint moved aside and removes temporaries', async () => {
  const { parent, target } = setup();
  const history = join(parent, 'history');
  mkdirSync(history);
  await saveCheckpoint(target, A()); // step 100
  await saveCheckpoint(target, B(), { previous: join(history, 'step-100') }); // step 200, 100 kept
  expect(readdirSync(history)).toEqual(['step-100']);
  await expectCheckpoint(join(history, 'step-100'), A());
  // Cut short between the renames: 200 moved aside, the new save's files complete in a temporary directory.
  renameSync(target, join(history, 'step-200'));
  mkdirSync(join(parent, '.ckpt.tmp-dead'));
  writeFileSync(join(parent, '.ckpt.tmp-dead', 'config.json'), '{}');
  mkdirSync(join(history, 'step-300')); // incomplete: never chosen
  const done = await recoverCheckpoint(target, [
    join(history, 'step-100'),
    join(history, 'step-200'),
    join(history, 'step-300'),
  ]);
  expect(done).toEqual([
    `${target} was missing (a save was cut short): restored the checkpoint of step 200 from ` +
      join(history, 'step-200'),
    `removed ${join(parent, '.ckpt.tmp-dead')}, the temporary directory of a save that was cut short`,
  ]);
  await expectCheckpoint(target, B());
  expect(readdirSync(parent).sort()).toEqual(['ckpt', 'history']);
  expect(await recoverCheckpoint(target)).toEqual([]);
});
