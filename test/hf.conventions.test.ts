// hlm checkpoints against Hugging Face's conventions, read by a small reader written here
// (config.json parsed as JSON, model.safetensors's header and F32 data by hand), not by hlm's
// loader, and without transformers:
// - decoders are GPT2LMHeadModel; encoders carry a model_type transformers does not know
//   (AutoModel refuses, GPT-2 classes warn), is_decoder false, and hlm's causal: false;
// - tokenizer_config.json and special_tokens_map.json as transformers writes them for GPT-2
//   (bos/eos/unk <|endoftext|>, model_max_length = n_positions, GPT2Tokenizer), plus the mask
//   token for encoders;
// - GLUE decoder checkpoints are GPT2ForSequenceClassification: labels, a pad_token_id no
//   input holds, so that HF's last-non-pad pooling (both the old rule, first pad − 1, and the
//   new one, the rightmost non-pad) picks the token hlm pools, score.weight [C, d] and no
//   score.bias; HF's forward (the float64 reference GPT-2, pooled HF's way, HF's bias-free
//   head) predicts what hlm predicts on the GPU;
// - `pretrain --init` takes a Hugging Face GPT-2 directory: HF keys only, names without the
//   transformer. prefix, attention-mask buffers, an untied lm_head, sharded weights.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTestGpu } from './helpers/gpu.js';
import { hlm } from './helpers/cli.js';
import { HF_GPT2 } from './helpers/hf-gpt2.js';
import { makeRandom, randomGpt2Params } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { loadTokenizer } from '../src/data/tokenizer.js';
import { joinPair } from '../src/glue/encode.js';
import { Finetuner } from '../src/glue/finetune.js';
import { saveGlueCheckpoint } from '../src/glue/run.js';
import { loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.js';
import { preset, type ModelConfig } from '../src/model/config.js';
import { initParams, paramLayout } from '../src/model/params.js';
import { serializeSafetensors, type TensorToWrite } from '../src/model/safetensors.js';
import { gpt2Forward } from '../src/reference/gpt2.js';

let gpu: Gpu;
let dir: string;
const rand = makeRandom();
beforeAll(async () => {
  gpu = await openTestGpu();
  dir = mkdtempSync(join(tmpdir(), 'hlm-hf-'));
});
afterAll(() => {
  gpu?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

// ---- the independent reader ----

const json = (path: string) => JSON.parse(readFileSync(path, 'utf8'));

/** model.safetensors by hand: the header, and F32 tensors (little-endian) as float64. */
function readModel(path: string) {
  const b = readFileSync(path);
  const n = Number(b.readBigUInt64LE(0));
  const header = JSON.parse(b.subarray(8, 8 + n).toString('utf8')) as Record<
    string,
    { dtype: string; shape: number[]; data_offsets: [number, number] }
  >;
  const tensor = (name: string): Float64Array => {
    const t = header[name];
    if (!t) throw new Error(`${path}: no tensor ${name}`);
    expect(t.dtype).toBe('F32');
    const [from, to] = t.data_offsets;
    const view = new DataView(b.buffer, b.byteOffset + 8 + n + from, to - from);
    return Float64Array.from({ length: (to - from) / 4 }, (_, i) => view.getFloat32(4 * i, true));
  };
  const names = Object.keys(header).filter((k) => k !== '__metadata__');
  return { header, names, tensor };
}

/** What AutoConfig resolves: transformers knows model_type "gpt2"; hlm's own types are not in its mapping. */
const TRANSFORMERS_GPT2 = 'gpt2';

function checkTokenizerFiles(ck: string, c: ModelConfig, mask: string | null) {
  const tc = json(join(ck, 'tokenizer_config.json'));
  const st = json(join(ck, 'special_tokens_map.json'));
  const tj = json(join(ck, 'tokenizer.json'));
  const eot = '<|endoftext|>';
  expect(st).toEqual({ bos_token: eot, eos_token: eot, unk_token: eot, ...(mask ? { mask_token: mask } : {}) });
  expect(tc).toMatchObject({
    bos_token: eot,
    eos_token: eot,
    unk_token: eot,
    model_max_length: c.n_positions,
    tokenizer_class: 'GPT2Tokenizer',
    add_prefix_space: false,
    add_bos_token: false,
  });
  expect(tc.mask_token).toBe(mask ?? undefined);
  // added_tokens_decoder: tokenizer.json's added tokens, by id.
  for (const t of tj.added_tokens) expect(tc.added_tokens_decoder[String(t.id)]).toMatchObject({ content: t.content });
  expect(Object.keys(tc.added_tokens_decoder)).toHaveLength(tj.added_tokens.length);
  expect(tc.added_tokens_decoder['50256']).toMatchObject({ content: eot, special: true });
  if (mask) expect(tc.added_tokens_decoder[String(c.mask_token_id)]).toMatchObject({ content: mask, special: true });
}

test('a decoder is GPT2LMHeadModel with GPT-2 tokenizer files', async () => {
  const tok = await loadTokenizer('gpt2');
  const c: ModelConfig = { ...preset('tiny'), n_layer: 1, n_embd: 16, n_head: 2, n_positions: 64, eos_token_id: 50256 };
  const ck = join(dir, 'decoder');
  await saveCheckpoint(ck, { config: c, params: initParams(c, 1), tokenizerJson: tok.toJSON() });
  const cfg = json(join(ck, 'config.json'));
  expect(cfg).toMatchObject({
    model_type: TRANSFORMERS_GPT2,
    architectures: ['GPT2LMHeadModel'],
    n_positions: 64,
    bos_token_id: 50256,
    eos_token_id: 50256,
  });
  expect(cfg.is_decoder).toBeUndefined();
  checkTokenizerFiles(ck, c, null);
  const m = readModel(join(ck, 'model.safetensors'));
  expect(m.header.__metadata__).toEqual({ format: 'pt' });
  expect(m.names.every((n) => n.startsWith('transformer.'))).toBe(true);
});

test('an encoder cannot be loaded as a causal GPT-2 unawares; its tokenizer has the mask token', async () => {
  const tok = await loadTokenizer('gpt2');
  const c: ModelConfig = {
    ...preset('tiny'),
    n_layer: 1,
    n_embd: 16,
    n_head: 2,
    n_positions: 64,
    eos_token_id: 50256,
    causal: false,
    vocab_size: 50258,
    mask_token_id: 50257,
  };
  const ck = join(dir, 'encoder');
  await saveCheckpoint(ck, { config: c, params: initParams(c, 2), tokenizerJson: tok.toJSON({ withMask: true }) });
  const cfg = json(join(ck, 'config.json'));
  // AutoModel* looks model_type up in transformers' mapping (not there: it refuses); GPT2*.from_pretrained warns that
  // a model of type hlm_encoder instantiates a gpt2.
  expect(cfg.model_type).not.toBe(TRANSFORMERS_GPT2);
  expect(cfg.model_type).toBe('hlm_encoder');
  expect(cfg.architectures).not.toContain('GPT2LMHeadModel');
  expect(cfg).toMatchObject({ is_decoder: false, add_cross_attention: false, hlm: { causal: false } });
  checkTokenizerFiles(ck, c, '<|mask|>');
  // hlm itself reads it back as the encoder it is.
  expect((await loadCheckpoint(ck)).config).toEqual(c);
});

// ---- GLUE checkpoints in GPT2ForSequenceClassification ----

const SMALL: ModelConfig = {
  ...preset('tiny'),
  vocab_size: 41,
  n_positions: 24,
  n_embd: 12,
  n_layer: 2,
  n_head: 3,
  eos_token_id: 40,
};

/** GPT2ForSequenceClassification's pooled positions for a right-padded batch: both rules transformers has used. */
function hfPooledPositions(ids: number[][], pad: number | null | undefined): { old: number[]; current: number[] } {
  const T = ids[0].length;
  if (pad === null || pad === undefined) return { old: ids.map(() => T - 1), current: ids.map(() => T - 1) };
  // <= 4.46: first pad − 1, modulo T; later: the rightmost token that is not pad.
  const old = ids.map((row) => {
    const first = row.indexOf(pad);
    return ((((first < 0 ? 0 : first) - 1) % T) + T) % T;
  });
  const current = ids.map((row) => row.reduce((best, t, i) => (t !== pad ? i : best), 0));
  return { old, current };
}

const glueCases: [string, number, 'sst2' | 'mnli' | 'stsb'][] = [
  ['2 classes (SST-2)', 2, 'sst2'],
  ['3 classes (MNLI)', 3, 'mnli'],
  ['regression (STS-B)', 1, 'stsb'],
];

test.each(glueCases)(
  'a GLUE decoder, %s: loads as GPT2ForSequenceClassification, same predictions',
  async (_n, C, task) => {
    const c: ModelConfig = { ...SMALL, num_labels: C };
    const layout = paramLayout(c);
    const { params } = randomGpt2Params(layout, rand);
    // A bias that matters: shifts of the size of the logits.
    const bias = layout.byName.get('score.bias')!;
    params.set(
      Array.from({ length: C }, (_, i) => 1.5 * (i + 1) * (i % 2 ? -1 : 1)),
      bias.offset,
    );
    const sep = c.eos_token_id!;
    const inputs = Array.from({ length: 7 }, (_, i) => {
      const a = Array.from(rand.int(2 + (i % 5), 40));
      const b = i % 2 ? Array.from(rand.int(1 + (i % 3), 40)) : undefined;
      return joinPair(a, b, sep, 16).tokens;
    });
    // hlm's predictions (the GPU, batched and right-padded), with the unfolded parameters.
    const ft = await Finetuner.create(gpu, c, {
      batchSize: 4,
      maxSeqLen: 16,
      pooling: 'last',
      optimizer: 'adamw',
      weightDecay: 0,
      gradClip: 0,
    });
    ft.reset(params);
    const hlmLogits = await ft.predict(inputs);
    const ck = join(dir, `glue-${task}`);
    await saveGlueCheckpoint(ck, {
      config: c,
      params,
      hlm: {},
      record: { task, pooling: 'last', max_seq_len: 16, seed: 1, epoch: 1, dev: {} },
    });

    // What transformers reads.
    const cfg = json(join(ck, 'config.json'));
    expect(cfg).toMatchObject({ model_type: TRANSFORMERS_GPT2, architectures: ['GPT2ForSequenceClassification'] });
    expect(Object.keys(cfg.id2label)).toHaveLength(C);
    for (const [id, label] of Object.entries(cfg.id2label)) expect(cfg.label2id[label as string]).toBe(Number(id));
    expect(cfg.problem_type).toBe(C === 1 ? 'regression' : 'single_label_classification');
    if (task === 'mnli') expect(cfg.id2label).toEqual({ 0: 'entailment', 1: 'neutral', 2: 'contradiction' });
    const pad = cfg.pad_token_id as number;
    expect(Number.isInteger(pad)).toBe(true);
    expect(inputs.flat()).not.toContain(pad);
    const m = readModel(join(ck, 'model.safetensors'));
    expect(m.header['score.weight'].shape).toEqual([C, c.n_embd]);
    // GPT2ForSequenceClassification has no score.bias: a file holding one would be loaded without it.
    expect(m.names).not.toContain('score.bias');
    expect(m.names.filter((n) => !n.startsWith('transformer.'))).toEqual(['score.weight']);

    // HF's pooling on a right-padded batch (its tokenizer pads with pad_token_id) picks each row's last real token.
    const T = Math.max(...inputs.map((x) => x.length));
    const padded = inputs.map((x) => [...x, ...Array(T - x.length).fill(pad)]);
    const pooled = hfPooledPositions(padded, pad);
    expect(pooled.old).toEqual(inputs.map((x) => x.length - 1));
    expect(pooled.current).toEqual(inputs.map((x) => x.length - 1));

    // HF's forward from the file: the GPT-2 body (float64 reference), the pooled hidden state, score.weight, no bias.
    const named: Record<string, Float64Array> = {};
    for (const n of m.names) named[n] = m.tensor(n);
    const W = named['score.weight'];
    let worst = 0;
    inputs.forEach((x, r) => {
      const { hidden } = gpt2Forward(named, c, x, 1, x.length, { logProbs: false });
      const h = hidden.subarray(pooled.current[r] * c.n_embd, (pooled.current[r] + 1) * c.n_embd);
      const hf = Array.from({ length: C }, (_, k) => h.reduce((s, v, j) => s + v * W[k * c.n_embd + j], 0));
      const ours = Array.from(hlmLogits.subarray(r * C, (r + 1) * C));
      for (let k = 0; k < C; k++) worst = Math.max(worst, Math.abs(hf[k] - ours[k]) / (1 + Math.abs(ours[k])));
      if (C > 1) {
        const arg = (z: number[]) => z.indexOf(Math.max(...z));
        const sorted = [...ours].sort((a, b) => b - a);
        if (sorted[0] - sorted[1] > 1e-3) expect(arg(hf)).toBe(arg(ours));
      }
    });
    expect(!(worst <= 1e-4)).toBe(false);

    // hlm reads the folded checkpoint back (a missing score.bias is zero) and predicts the same.
    const back = await loadCheckpoint(ck);
    ft.reset(back.params);
    const again = await ft.predict(inputs);
    ft.destroy();
    for (let i = 0; i < again.length; i++)
      expect(Math.abs(again[i] - hlmLogits[i])).toBeLessThan(1e-4 * (1 + Math.abs(hlmLogits[i])));
    expect(back.hlm.glue).toMatchObject({ task, score_bias: 'folded into transformer.ln_f.bias' });
  },
  120_000,
);

test('GLUE checkpoints Hugging Face cannot reproduce are marked so it refuses them', async () => {
  const save = async (name: string, c: ModelConfig, pooling: 'mean' | 'last') => {
    const ck = join(dir, name);
    const layout = paramLayout(c);
    const { params } = randomGpt2Params(layout, rand);
    await saveGlueCheckpoint(ck, {
      config: c,
      params,
      hlm: {},
      record: { task: 'sst2', pooling, max_seq_len: 16, seed: 1, epoch: 1, dev: {} },
    });
    return { cfg: json(join(ck, 'config.json')), names: readModel(join(ck, 'model.safetensors')).names };
  };
  const mean = await save('glue-mean', { ...SMALL, num_labels: 2 }, 'mean');
  expect(mean.cfg.model_type).toBe('hlm_classifier');
  expect(mean.cfg.architectures).toEqual(['GPT2Model']);
  expect(mean.names).toContain('score.bias');
  const enc = await save('glue-encoder', { ...SMALL, num_labels: 2, causal: false, mask_token_id: 39 }, 'mean');
  expect(enc.cfg.model_type).toBe('hlm_encoder');
  expect(enc.cfg.pad_token_id).toBeUndefined();
});

// ---- --init from a Hugging Face GPT-2 directory ----

test('pretrain --init reads a Hugging Face GPT-2 directory: sharded, prefix-free, untied head, buffers', async () => {
  const hf = join(dir, 'hf-gpt2');
  mkdirSync(hf);
  const c = { V: 50257, P: 32, d: 16, L: 2 };
  // config.json as transformers writes it for GPT-2, with HF keys only.
  writeFileSync(
    join(hf, 'config.json'),
    JSON.stringify({
      ...HF_GPT2,
      n_ctx: c.P,
      n_embd: c.d,
      n_head: 2,
      n_inner: null,
      n_layer: c.L,
      n_positions: c.P,
      tie_word_embeddings: false,
      torch_dtype: 'float32',
      transformers_version: '4.44.2',
      use_cache: true,
    }),
  );
  const shapes: Record<string, number[]> = { 'wte.weight': [c.V, c.d], 'wpe.weight': [c.P, c.d] };
  for (let l = 0; l < c.L; l++) {
    const h = `h.${l}.`;
    Object.assign(shapes, {
      [`${h}ln_1.weight`]: [c.d],
      [`${h}ln_1.bias`]: [c.d],
      [`${h}attn.c_attn.weight`]: [c.d, 3 * c.d],
      [`${h}attn.c_attn.bias`]: [3 * c.d],
      [`${h}attn.c_proj.weight`]: [c.d, c.d],
      [`${h}attn.c_proj.bias`]: [c.d],
      [`${h}ln_2.weight`]: [c.d],
      [`${h}ln_2.bias`]: [c.d],
      [`${h}mlp.c_fc.weight`]: [c.d, 4 * c.d],
      [`${h}mlp.c_fc.bias`]: [4 * c.d],
      [`${h}mlp.c_proj.weight`]: [4 * c.d, c.d],
      [`${h}mlp.c_proj.bias`]: [c.d],
    });
  }
  Object.assign(shapes, { 'ln_f.weight': [c.d], 'ln_f.bias': [c.d], 'lm_head.weight': [c.V, c.d] });
  const values: Record<string, Float32Array> = {};
  for (const [name, shape] of Object.entries(shapes))
    values[name] = rand.normal(
      shape.reduce((a, b) => a * b, 1),
      0.1,
    );
  // Two shards (the lm_head alone in the second), plus HF's causal-mask buffers.
  const shard = (names: string[], extra: Record<string, TensorToWrite> = {}) =>
    serializeSafetensors(
      {
        ...Object.fromEntries(names.map((n) => [n, { dtype: 'F32' as const, shape: shapes[n], data: values[n] }])),
        ...extra,
      },
      { format: 'pt' },
    );
  const body = Object.keys(shapes).filter((n) => n !== 'lm_head.weight');
  const mask = new Float32Array(c.P * c.P).fill(1);
  const buffers = Object.fromEntries(
    Array.from({ length: c.L }, (_, l) => [
      `h.${l}.attn.bias`,
      { dtype: 'F32' as const, shape: [1, 1, c.P, c.P], data: mask },
    ]),
  );
  writeFileSync(join(hf, 'model-00001-of-00002.safetensors'), shard(body, buffers));
  writeFileSync(join(hf, 'model-00002-of-00002.safetensors'), shard(['lm_head.weight']));
  const weightMap = Object.fromEntries([
    ...body.map((n) => [n, 'model-00001-of-00002.safetensors']),
    ...Object.keys(buffers).map((n) => [n, 'model-00001-of-00002.safetensors']),
    ['lm_head.weight', 'model-00002-of-00002.safetensors'],
  ]);
  writeFileSync(
    join(hf, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: 0 }, weight_map: weightMap }),
  );

  const loaded = await loadCheckpoint(hf);
  expect(loaded.config).toMatchObject({ vocab_size: c.V, n_positions: c.P, tie_word_embeddings: false });
  expect(loaded.ignored.sort()).toEqual(['h.0.attn.bias', 'h.1.attn.bias']);

  const text = join(dir, 'tiny.txt');
  writeFileSync(text, 'The quick brown fox jumps over the lazy dog. '.repeat(40));
  const out = join(dir, 'from-hf');
  // lr 0: the saved weights are the directory's, exactly.
  const r = hlm(
    ['pretrain', '--init', hf, '--data', text, '--out', out, '--steps', '1', '--lr', '0', '--batch-size', '1'],
    {},
    300_000,
  );
  if (r.status !== 0) throw new Error(r.stderr);
  const m = readModel(join(out, 'checkpoint', 'model.safetensors'));
  const cfg = json(join(out, 'checkpoint', 'config.json'));
  expect(cfg).toMatchObject({ model_type: 'gpt2', tie_word_embeddings: false, architectures: ['GPT2LMHeadModel'] });
  for (const [name, v] of Object.entries(values)) {
    const full = name === 'lm_head.weight' ? name : `transformer.${name}`;
    const got = m.tensor(full);
    expect(got.length).toBe(v.length);
    expect(got.every((x, i) => x === v[i])).toBe(true);
  }
  checkTokenizerFiles(join(out, 'checkpoint'), { ...SMALL, n_positions: c.P }, null);

  // A shard index that names a tensor its shard lacks is refused, naming both.
  writeFileSync(
    join(hf, 'model.safetensors.index.json'),
    JSON.stringify({ weight_map: { ...weightMap, 'h.9.ln_1.weight': 'model-00002-of-00002.safetensors' } }),
  );
  await expect(loadCheckpoint(hf)).rejects.toThrow(
    /model.safetensors.index.json: tensor 'h.9.ln_1.weight' is not in its shard model-00002-of-00002/,
  );
}, 300_000);
