// Fuzzing the model's files: safetensors (header JSON with wrong shapes, dtypes, negative, huge or
// overlapping offsets; truncations), checkpoint directories (config.json, model.safetensors,
// optimizer.safetensors; parsed and converted on the CPU, no GPU) and `pretrain --config` files.
// Valid files with mutations, and raw bytes (helpers/fuzz.ts).
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  DTYPES,
  DTYPE_SIZE,
  readSafetensorsFile,
  serializeSafetensors,
  tensorToFloat32,
  tensorToIntegers,
} from '../src/model/safetensors.js';
import { loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { initParams, paramLayout } from '../src/model/params.js';
import { readConfigFile } from '../src/model/overrides.js';
import { RUN_SCHEMA } from '../src/train/pretrain.js';
import {
  FUZZ_RUNS,
  FUZZ_TIMEOUT_MS,
  Tally,
  fc,
  fuzzParameters,
  fuzzRoot,
  jsonMutated,
  mutated,
  rawBytes,
  readCase,
  word,
  type Files,
} from './helpers/fuzz.js';

const { root, done } = fuzzRoot('model');
afterAll(done);

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16', 'F64']);

/** A safetensors file's header as JSON, changed structurally, written back with its length (or a wrong one). */
function withHeader(file: Uint8Array, header: (h: unknown) => fc.Arbitrary<unknown>): fc.Arbitrary<Buffer> {
  const b = Buffer.from(file);
  const n = Number(b.readBigUInt64LE(0));
  const json = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as unknown;
  return fc
    .tuple(header(json), fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { freq: 5 }))
    .map(([h, length]) => {
      const text = Buffer.from(JSON.stringify(h));
      const head = Buffer.alloc(8);
      head.writeBigUInt64LE(length ?? BigInt(text.length));
      return Buffer.concat([head, text, b.subarray(8 + n)]);
    });
}

/** A valid safetensors file of a few small tensors of any dtype. */
const safetensors = fc
  .uniqueArray(fc.tuple(word, fc.constantFrom(...DTYPES), fc.array(fc.integer({ min: 0, max: 4 }), { maxLength: 3 })), {
    maxLength: 4,
    selector: ([name]) => name,
  })
  .chain((specs) =>
    fc.tuple(
      ...specs.map(([name, dtype, shape]) =>
        fc
          .uint8Array({
            minLength: shape.reduce((a, x) => a * x, 1) * DTYPE_SIZE[dtype],
            maxLength: shape.reduce((a, x) => a * x, 1) * DTYPE_SIZE[dtype],
          })
          .map((data) => [name, { dtype, shape, data }] as const),
      ),
    ),
  )
  .map((tensors) => serializeSafetensors(new Map(tensors)));

const safetensorsFile = fc.oneof(
  mutated(safetensors),
  safetensors.chain((f) => withHeader(f, (h) => jsonMutated(fc.constant(h)))),
  rawBytes,
);

test(
  `safetensors: ${FUZZ_RUNS} generated inputs read (and convert) or fail with an hlm error naming the file`,
  async () => {
    const tally = new Tally('safetensors');
    await fc.assert(
      fc.asyncProperty(safetensorsFile, async (bytes) => {
        const outcome = await readCase(
          root,
          { 'model.safetensors': bytes },
          async (dir) => {
            const path = join(dir, 'model.safetensors');
            const file = await readSafetensorsFile(path);
            for (const [name, t] of file.tensors) {
              if (FLOAT_DTYPES.has(t.dtype)) tensorToFloat32(t, name, path);
              else tensorToIntegers(t, name, path);
            }
          },
          (dir) => join(dir, 'model.safetensors'),
        );
        tally.add(outcome);
      }),
      fuzzParameters(),
    );
    tally.check();
  },
  FUZZ_TIMEOUT_MS,
);

// A valid checkpoint of a tiny model (with optimizer state), written once; cases are mutations of its files.
const CONFIG: ModelConfig = {
  ...preset('tiny'),
  vocab_size: 24,
  n_layer: 1,
  n_embd: 8,
  n_head: 2,
  n_positions: 8,
  eos_token_id: null,
};
let template: Record<string, Buffer>;
beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hlm-fuzz-ck-'));
  const total = paramLayout(CONFIG).total;
  const m = new Float32Array(total).fill(0.5);
  await saveCheckpoint(join(dir, 'ck'), {
    config: CONFIG,
    params: initParams(CONFIG, 3),
    optimizer: { step: 7, m, v: m },
  });
  template = Object.fromEntries(readdirSync(join(dir, 'ck')).map((f) => [f, readFileSync(join(dir, 'ck', f))]));
  rmSync(dir, { recursive: true, force: true });
});

/** Which checkpoint file a case changes, and how. */
const checkpointChange = fc.record({
  file: fc.constantFrom('config.json', 'model.safetensors', 'optimizer.safetensors'),
  how: fc.constantFrom('bytes', 'json', 'drop'),
});

function checkpointCase(): fc.Arbitrary<Files> {
  return fc.array(checkpointChange, { maxLength: 3 }).chain((changes) => {
    const files: Record<string, fc.Arbitrary<Buffer | null>> = {};
    for (const [name, data] of Object.entries(template)) files[name] = fc.constant(data);
    for (const c of changes) {
      const data = template[c.file];
      if (c.how === 'drop') files[c.file] = fc.constant(null);
      else if (c.how === 'bytes') files[c.file] = mutated(fc.constant(data));
      else if (c.file === 'config.json')
        files[c.file] = jsonMutated(fc.constant(JSON.parse(data.toString('utf8')))).map((j) =>
          Buffer.from(JSON.stringify(j)),
        );
      else files[c.file] = withHeader(data, (h) => jsonMutated(fc.constant(h)));
    }
    return fc.record(files).map((f) => {
      const out: Files = {};
      for (const [name, data] of Object.entries(f)) if (data) out[`ck/${name}`] = data;
      return out;
    });
  });
}

test(
  `checkpoint directories: ${FUZZ_RUNS} generated inputs load or fail with an hlm error naming the checkpoint`,
  async () => {
    const tally = new Tally('checkpoints');
    await fc.assert(
      fc.asyncProperty(checkpointCase(), async (files) => {
        const outcome = await readCase(
          root,
          files,
          async (dir) => {
            const ck = await loadCheckpoint(join(dir, 'ck'));
            if (ck.params.length !== ck.layout.total) throw new Error('parameters do not fill the layout');
          },
          (dir) => join(dir, 'ck'),
        );
        tally.add(outcome);
      }),
      fuzzParameters(),
    );
    tally.check();
  },
  FUZZ_TIMEOUT_MS,
);

/** A `pretrain --config` file: model and training keys with valid values. */
const configFile = fc.record(
  {
    n_layer: fc.integer({ min: 1, max: 12 }),
    n_embd: fc.constantFrom(64, 128, 768),
    causal: fc.boolean(),
    lr: fc.double({ min: 1e-6, max: 1, noNaN: true }),
    steps: fc.integer({ min: 1, max: 10000 }),
    batch_size: fc.integer({ min: 1, max: 64 }),
    objective: fc.constantFrom('ce', 'cwt'),
  },
  { requiredKeys: [] },
);

test(
  `pretrain --config files: ${FUZZ_RUNS} generated inputs read or fail with an hlm error naming the file`,
  async () => {
    const tally = new Tally('config files');
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          jsonMutated(configFile).map((j) => JSON.stringify(j) ?? ''),
          mutated(configFile.map((j) => JSON.stringify(j))),
          rawBytes,
        ),
        async (text) => {
          const outcome = await readCase(
            root,
            { 'run.json': text },
            async (dir) => {
              await readConfigFile(join(dir, 'run.json'), RUN_SCHEMA);
            },
            (dir) => join(dir, 'run.json'),
          );
          tally.add(outcome);
        },
      ),
      fuzzParameters(),
    );
    tally.check();
  },
  FUZZ_TIMEOUT_MS,
);
