import { mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { preset, type ModelConfig } from '../src/model/config.js';
import { initParams, paramLayout, tensorView } from '../src/model/params.js';
import {
  parseSafetensors,
  serializeSafetensors,
  tensorToFloat32,
  type TensorToWrite,
} from '../src/model/safetensors.js';
import { loadCheckpoint, readCheckpointConfig, saveCheckpoint } from '../src/model/checkpoint.js';
import { makeRandom, refusal } from './helpers/check.js';

const CONFIG: ModelConfig = {
  ...preset('tiny'),
  vocab_size: 300,
  n_positions: 16,
  n_embd: 32,
  n_head: 4,
  n_layer: 2,
  eos_token_id: 299,
};
const scratch = () => mkdtempSync(join(tmpdir(), 'hlm-ckpt-'));
const same = (a: Float32Array, b: Float32Array) =>
  a.length === b.length &&
  Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/** HF-style weights for a configuration: every layout tensor under its name, optionally renamed. */
function hfTensors(
  config: ModelConfig,
  params: Float32Array,
  rename = (n: string) => n,
): Record<string, TensorToWrite> {
  const layout = paramLayout(config);
  return Object.fromEntries(
    layout.tensors.map((t) => [
      rename(t.name),
      { dtype: 'F32' as const, shape: t.shape, data: tensorView(params, layout, t.name).slice() },
    ]),
  );
}

function writeHfDir(config: object, tensors: Record<string, TensorToWrite>): string {
  const dir = scratch();
  writeFileSync(join(dir, 'config.json'), JSON.stringify(config));
  writeFileSync(join(dir, 'model.safetensors'), serializeSafetensors(tensors, { format: 'pt' }));
  return dir;
}

test('save and load round-trip every file exactly', async () => {
  const r = makeRandom();
  const layout = paramLayout(CONFIG);
  const params = initParams(CONFIG, r.seed);
  const optimizer = { step: 1234, m: r.normal(layout.total), v: r.uniform(layout.total, 0, 1) };
  const dir = join(scratch(), 'ckpt');
  const tokenizerJson = JSON.stringify({ version: '1.0', model: { type: 'BPE' } });
  await saveCheckpoint(dir, {
    config: CONFIG,
    params,
    optimizer,
    tokenizerJson,
    hlm: { step: 1234, data_position: { shard: 1, token: 98304 }, tokenizer: { type: 'file', file: 'tokenizer.json' } },
    extraFiles: { 'run.json': '{"lr":0.0003}\n' },
  });
  expect(readdirSync(dir).sort()).toEqual([
    'config.json',
    'model.safetensors',
    'optimizer.safetensors',
    'run.json',
    'special_tokens_map.json',
    'tokenizer.json',
    'tokenizer_config.json',
  ]);

  const loaded = await loadCheckpoint(dir);
  expect(loaded.config).toEqual(CONFIG);
  expect(loaded.hlm).toEqual({
    step: 1234,
    data_position: { shard: 1, token: 98304 },
    tokenizer: { type: 'file', file: 'tokenizer.json' },
  });
  expect(same(loaded.params, params)).toBe(true);
  expect(loaded.optimizer?.step).toBe(1234);
  expect(same(loaded.optimizer!.m, optimizer.m)).toBe(true);
  expect(same(loaded.optimizer!.v, optimizer.v)).toBe(true);
  expect(loaded.tokenizerJson).toBe(tokenizerJson);
  expect(loaded.ignored).toEqual([]);
  expect(readFileSync(join(dir, 'run.json'), 'utf8')).toBe('{"lr":0.0003}\n');
  expect((await loadCheckpoint(dir, { optimizer: false })).optimizer).toBeUndefined();

  // config.json is Hugging Face's; model.safetensors holds exactly the layout's tensors under HF names, F32, format pt.
  const hf = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  expect(hf).toMatchObject({
    model_type: 'gpt2',
    architectures: ['GPT2LMHeadModel'],
    n_embd: 32,
    n_layer: 2,
    n_head: 4,
    n_positions: 16,
    vocab_size: 300,
    tie_word_embeddings: true,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
  });
  const model = parseSafetensors(readFileSync(join(dir, 'model.safetensors')), 'model');
  expect(model.metadata).toEqual({ format: 'pt' });
  expect([...model.tensors.keys()]).toEqual(layout.tensors.map((t) => t.name).sort());
  expect(model.tensors.has('lm_head.weight')).toBe(false); // tied: HF re-ties it
  for (const t of layout.tensors) {
    const got = model.tensors.get(t.name)!;
    expect(got.dtype).toBe('F32');
    expect(got.shape).toEqual(t.shape);
    expect(same(tensorToFloat32(got, t.name, 'model'), tensorView(params, layout, t.name))).toBe(true);
  }
  expect((await readCheckpointConfig(dir)).config).toEqual(CONFIG);
});

test('untied and classifier checkpoints carry lm_head and score (a zero score.bias left out)', async () => {
  const config = { ...CONFIG, tie_word_embeddings: false, num_labels: 3 };
  const params = initParams(config, 5);
  const dir = join(scratch(), 'c');
  await saveCheckpoint(dir, { config, params });
  const model = parseSafetensors(readFileSync(join(dir, 'model.safetensors')), 'model');
  expect(model.tensors.get('lm_head.weight')?.shape).toEqual([300, 32]);
  expect(model.tensors.get('score.weight')?.shape).toEqual([3, 32]);
  expect(model.tensors.has('score.bias')).toBe(false);
  const hf = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
  expect(hf.architectures).toEqual(['GPT2ForSequenceClassification']);
  expect(hf.model_type).toBe('gpt2');
  const loaded = await loadCheckpoint(dir);
  expect(loaded.config).toEqual(config);
  expect(same(loaded.params, params)).toBe(true);
  // A bias that is not zero is kept, and Hugging Face's head (which has none) must not load it.
  tensorView(params, paramLayout(config), 'score.bias').set([0.5, -1, 2]);
  const biased = join(scratch(), 'c-bias');
  await saveCheckpoint(biased, { config, params });
  const file = parseSafetensors(readFileSync(join(biased, 'model.safetensors')), 'model');
  expect(file.tensors.get('score.bias')?.shape).toEqual([3]);
  expect(JSON.parse(readFileSync(join(biased, 'config.json'), 'utf8')).model_type).toBe('hlm_classifier');
  expect(same((await loadCheckpoint(biased)).params, params)).toBe(true);
});

test(
  'a Hugging Face GPT2Model-style directory loads: no prefix, mask buffers, tied lm_head ' + 'equal to wte, bf16',
  async () => {
    const params = initParams(CONFIG, 11);
    const layout = paramLayout(CONFIG);
    const tensors = hfTensors(CONFIG, params, (n) => n.replace(/^transformer\./, ''));
    for (let i = 0; i < CONFIG.n_layer; i++) {
      tensors[`h.${i}.attn.bias`] = { dtype: 'F32', shape: [1, 1, 16, 16], data: new Float32Array(256).fill(1) };
      tensors[`h.${i}.attn.masked_bias`] = { dtype: 'F32', shape: [], data: Float32Array.of(-1e4) };
    }
    tensors['lm_head.weight'] = { ...tensors['wte.weight'] };
    // One tensor stored as bfloat16 (exactly representable values).
    const ln = Float32Array.of(...Array.from({ length: 32 }, (_, i) => 1 + i / 8));
    tensors['ln_f.weight'] = {
      dtype: 'BF16',
      shape: [32],
      data: Uint16Array.from(new Uint32Array(ln.buffer), (x) => x >>> 16),
    };
    tensorView(params, layout, 'transformer.ln_f.weight').set(ln);
    const dir = writeHfDir(
      {
        model_type: 'gpt2',
        vocab_size: 300,
        n_positions: 16,
        n_embd: 32,
        n_layer: 2,
        n_head: 4,
        eos_token_id: 299,
        architectures: ['GPT2Model'],
      },
      tensors,
    );

    const loaded = await loadCheckpoint(dir);
    expect(loaded.config).toEqual(CONFIG);
    expect(same(loaded.params, params)).toBe(true);
    expect(loaded.ignored.sort()).toEqual([
      'h.0.attn.bias',
      'h.0.attn.masked_bias',
      'h.1.attn.bias',
      'h.1.attn.masked_bias',
      'lm_head.weight',
    ]);
    expect(loaded.tokenizerJson).toBeUndefined();

    // A tied head that is not wte is a contradiction.
    const other = {
      ...tensors,
      'lm_head.weight': { dtype: 'F32' as const, shape: [300, 32], data: new Float32Array(300 * 32) },
    };
    expect(await refusal(loadCheckpoint(writeHfDir({ ...loaded.config, model_type: 'gpt2' }, other)))).toMatch(
      /model.safetensors: tensor 'lm_head.weight' differs from transformer.wte.weight \(element 0: 0 vs .*\) but config.json says tie_word_embeddings true/,
    );
  },
);

describe('a checkpoint that does not fit its config is refused, naming the tensor', () => {
  const params = initParams(CONFIG, 3);
  const hfConfig = {
    model_type: 'gpt2',
    vocab_size: 300,
    n_positions: 16,
    n_embd: 32,
    n_layer: 2,
    n_head: 4,
    eos_token_id: 299,
  };

  test('a missing tensor', async () => {
    const tensors = hfTensors(CONFIG, params);
    delete tensors['transformer.h.1.mlp.c_fc.bias'];
    const msg = await refusal(loadCheckpoint(writeHfDir(hfConfig, tensors)));
    expect(msg).toMatch(/\/model.safetensors: tensor 'transformer.h.1.mlp.c_fc.bias' is missing$/);
    const untied = await refusal(
      loadCheckpoint(writeHfDir({ ...hfConfig, tie_word_embeddings: false }, hfTensors(CONFIG, params))),
    );
    expect(untied).toMatch(/tensor 'lm_head.weight' is missing \(the config says tie_word_embeddings false/);
  });

  test('a wrong shape, with expected and found shapes', async () => {
    const tensors = hfTensors(CONFIG, params);
    tensors['transformer.wpe.weight'] = { dtype: 'F32', shape: [32, 32], data: new Float32Array(32 * 32) };
    expect(await refusal(loadCheckpoint(writeHfDir(hfConfig, tensors)))).toMatch(
      /tensor 'transformer.wpe.weight' has shape \[32, 32\], expected \[16, 32\] \(vocab_size 300, n_positions 16, n_embd 32, n_layer 2\)$/,
    );
    const t2 = hfTensors(CONFIG, params);
    t2['transformer.h.0.mlp.c_fc.weight'] = { dtype: 'F32', shape: [128, 32], data: new Float32Array(128 * 32) };
    expect(await refusal(loadCheckpoint(writeHfDir(hfConfig, t2)))).toMatch(
      /has shape \[128, 32\], expected \[32, 128\] .*; it is transposed \(GPT-2 Conv1D weights are stored \[in, out\]\)/,
    );
    // A config that disagrees with the weights (here n_embd) is caught the same way.
    expect(await refusal(loadCheckpoint(writeHfDir({ ...hfConfig, n_embd: 64 }, hfTensors(CONFIG, params))))).toMatch(
      /tensor 'transformer.wte.weight' has shape \[300, 32\], expected \[300, 64\]/,
    );
  });

  test('a name given twice, a non-finite value, a non-float dtype', async () => {
    const dup = hfTensors(CONFIG, params);
    dup['wte.weight'] = dup['transformer.wte.weight'];
    expect(await refusal(loadCheckpoint(writeHfDir(hfConfig, dup)))).toMatch(
      /tensors 'transformer.wte.weight' and 'wte.weight' are both transformer.wte.weight/,
    );
    const nan = hfTensors(CONFIG, params);
    nan['transformer.h.0.ln_2.bias'].data = new Float32Array(32).fill(0);
    (nan['transformer.h.0.ln_2.bias'].data as Float32Array)[5] = Number.NaN;
    expect(await refusal(loadCheckpoint(writeHfDir(hfConfig, nan)))).toMatch(
      /tensor 'transformer.h.0.ln_2.bias' holds NaN at element 5 \(file byte \d+\)/,
    );
    const ints = hfTensors(CONFIG, params);
    ints['transformer.ln_f.bias'] = { dtype: 'I32', shape: [32], data: new Int32Array(32) };
    expect(await refusal(loadCheckpoint(writeHfDir(hfConfig, ints)))).toMatch(
      /tensor 'transformer.ln_f.bias' has dtype I32; a floating-point tensor/,
    );
  });

  test('directories that are not checkpoints', async () => {
    const empty = scratch();
    expect(await refusal(loadCheckpoint(empty))).toMatch(/is not a checkpoint directory: it has no config.json/);
    expect(await refusal(loadCheckpoint(join(empty, 'nope')))).toMatch(/checkpoint directory .*nope does not exist/);
    writeFileSync(join(empty, 'config.json'), '{"model_type": "gpt2",');
    expect(await refusal(loadCheckpoint(empty))).toMatch(/config.json is not valid JSON/);
    writeFileSync(join(empty, 'config.json'), JSON.stringify(hfConfig));
    writeFileSync(join(empty, 'pytorch_model.bin'), 'x');
    expect(await refusal(loadCheckpoint(empty))).toMatch(/has no model.safetensors: it has pytorch_model.bin only/);
  });
});

test('a body checkpoint loads into a classifier config, the new head initialised from the seed', async () => {
  const params = initParams(CONFIG, 21);
  const dir = join(scratch(), 'body');
  const layout = paramLayout(CONFIG);
  await saveCheckpoint(dir, {
    config: CONFIG,
    params,
    optimizer: { step: 3, m: new Float32Array(layout.total), v: new Float32Array(layout.total) },
  });
  const withHead = { ...CONFIG, num_labels: 2 };
  expect(await refusal(loadCheckpoint(dir, { config: withHead, optimizer: false }))).toMatch(
    /tensor 'score.weight' is missing \(the config asks for a 2-label classifier head\)/,
  );
  const loaded = await loadCheckpoint(dir, { config: withHead, optimizer: false, initMissing: { seed: 77 } });
  expect(loaded.initialized).toEqual(['score.weight', 'score.bias']);
  const ref = initParams(withHead, 77);
  expect(
    same(tensorView(loaded.params, loaded.layout, 'score.weight'), tensorView(ref, loaded.layout, 'score.weight')),
  ).toBe(true);
  expect(
    same(
      tensorView(loaded.params, loaded.layout, 'transformer.h.1.attn.c_attn.weight'),
      tensorView(params, layout, 'transformer.h.1.attn.c_attn.weight'),
    ),
  ).toBe(true);
  // The optimizer's flat moments belong to the old layout: refused, not silently misaligned.
  expect(await refusal(loadCheckpoint(dir, { config: withHead, initMissing: { seed: 77 } }))).toMatch(
    /optimizer.safetensors: tensor 'exp_avg' has shape \[\d+\], expected \[\d+\] \(the flat parameter layout/,
  );
  // A body tensor is never silently initialised.
  const body = hfTensors(CONFIG, params);
  delete body['transformer.wpe.weight'];
  const hfDir = writeHfDir(
    { model_type: 'gpt2', vocab_size: 300, n_positions: 16, n_embd: 32, n_layer: 2, n_head: 4, eos_token_id: 299 },
    body,
  );
  expect(await refusal(loadCheckpoint(hfDir, { initMissing: { seed: 1 } }))).toMatch(
    /tensor 'transformer.wpe.weight' is missing/,
  );
});
