import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HlmError } from '../src/errors.js';
import {
  GPT2_EOT,
  MODEL_CONFIG_SCHEMA,
  PRESETS,
  PRESET_NAMES,
  fromHfConfig,
  pickModelConfig,
  preset,
  toHfConfig,
  validateConfig,
  type ModelConfig,
} from '../src/model/config.js';
import {
  applyOverrides,
  parseOverrides,
  readConfigFile,
  resolveSettings,
  type ConfigSchema,
} from '../src/model/overrides.js';
import { HF_GPT2 } from './helpers/hf-gpt2.js';

const bad = (c: Partial<ModelConfig>) => () => validateConfig({ ...preset('tiny'), ...c });

test('presets are valid and have the promised sizes', () => {
  expect(PRESET_NAMES).toEqual(['tiny', 'small', 'base']);
  for (const name of PRESET_NAMES) validateConfig(preset(name), name);
  expect(preset('small')).toMatchObject({ n_layer: 6, n_embd: 512, n_head: 8, n_positions: 1024, vocab_size: 50257 });
  expect(preset('base')).toMatchObject({
    n_layer: 12,
    n_embd: 768,
    n_head: 12,
    n_positions: 1024,
    layer_norm_epsilon: 1e-5,
  });
  expect(preset('tiny')).toMatchObject({
    n_layer: 2,
    n_embd: 64,
    n_head: 4,
    n_positions: 128,
    causal: true,
    objective: 'ce',
    tie_word_embeddings: true,
  });
  const copy = preset('tiny');
  copy.n_layer = 9;
  expect(PRESETS.tiny.n_layer).toBe(2); // presets hand out copies
  expect(() => preset('huge')).toThrow(/unknown preset 'huge'; presets: tiny, small, base/);
});

test('validation names the bad key', () => {
  expect(bad({ n_embd: 66 })).toThrow(/n_embd \(66\) must be divisible by n_head \(4\)/);
  expect(bad({ n_layer: 0 })).toThrow(/n_layer must be a positive integer, got 0/);
  expect(bad({ vocab_size: 1.5 })).toThrow(/vocab_size must be a positive integer/);
  expect(bad({ n_head: Number.NaN })).toThrow(/n_head must be a positive integer/);
  expect(bad({ layer_norm_epsilon: 0 })).toThrow(/layer_norm_epsilon must be a positive number/);
  expect(bad({ objective: 'mlm' as never })).toThrow(/objective must be one of ce\|cwt/);
  expect(bad({ objective: 'cwt', tie_word_embeddings: false })).toThrow(/tie_word_embeddings must be true/);
  expect(bad({ causal: false })).toThrow(/encoder \(causal false\) needs mask_token_id/);
  expect(bad({ causal: false, mask_token_id: 50257 })).toThrow(
    /mask_token_id must be null or a token id in \[0, 50257\)/,
  );
  expect(bad({ num_labels: -1 })).toThrow(/num_labels must be a non-negative integer/);
  expect(bad({ n_layer: 0 })).toThrow(HlmError);
  validateConfig({ ...preset('tiny'), vocab_size: 50258, causal: false, mask_token_id: 50257, objective: 'cwt' });
});

test('HF config round trip keeps every model key; hlm extras ride along', () => {
  const c: ModelConfig = {
    ...preset('tiny'),
    eos_token_id: GPT2_EOT,
    vocab_size: 50258,
    causal: false,
    mask_token_id: 50257,
    objective: 'cwt',
    num_labels: 3,
  };
  const hf = toHfConfig(c, {
    step: 120,
    data_position: { shard: 2, offset: 4096 },
    tokenizer: { type: 'gpt2', added: ['<mask>'] },
    causal: 'ignored',
  });
  expect(hf).toMatchObject({
    // An encoder: a model_type transformers does not know, so no GPT-2 class runs it causally unawares.
    model_type: 'hlm_encoder',
    architectures: ['GPT2Model'],
    is_decoder: false,
    vocab_size: 50258,
    n_positions: 128,
    n_embd: 64,
    n_layer: 2,
    n_head: 4,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: 1e-5,
    tie_word_embeddings: true,
    eos_token_id: 50256,
    bos_token_id: 50256,
    id2label: { 0: 'LABEL_0', 1: 'LABEL_1', 2: 'LABEL_2' },
    hlm: { objective: 'cwt', causal: false, mask_token_id: 50257, num_labels: 3, step: 120 },
  });
  const back = fromHfConfig(JSON.parse(JSON.stringify(hf)));
  expect(back.config).toEqual(c);
  expect(back.hlm).toEqual({
    step: 120,
    data_position: { shard: 2, offset: 4096 },
    tokenizer: { type: 'gpt2', added: ['<mask>'] },
  });
  expect(toHfConfig(preset('base')).architectures).toEqual(['GPT2LMHeadModel']);
  // No known end token: say null, or GPT2Config would assume 50256.
  expect(toHfConfig(preset('tiny'))).toMatchObject({ eos_token_id: null, bos_token_id: null });
  expect(fromHfConfig(toHfConfig(preset('tiny'))).config).toEqual(preset('tiny'));
});

test("Hugging Face's own gpt2 config.json reads as the base preset", () => {
  const { config, hlm } = fromHfConfig(HF_GPT2);
  expect(config).toEqual({ ...preset('base'), eos_token_id: GPT2_EOT });
  expect(hlm).toEqual({});
  // Missing keys take GPT2Config's defaults; n_ctx stands in for n_positions.
  expect(fromHfConfig({ model_type: 'gpt2', n_layer: 2, n_ctx: 256 }).config).toMatchObject({
    n_layer: 2,
    n_positions: 256,
    n_embd: 768,
    vocab_size: 50257,
    eos_token_id: null,
  });
  expect(
    fromHfConfig({ ...HF_GPT2, architectures: ['GPT2ForSequenceClassification'], id2label: { 0: 'a', 1: 'b', 2: 'c' } })
      .config.num_labels,
  ).toBe(3);
});

test('HF configs that hlm cannot run are refused with the reason', () => {
  expect(() => fromHfConfig({ ...HF_GPT2, model_type: 'llama' }, 'x/config.json')).toThrow(
    /x\/config.json: model_type is "llama"/,
  );
  expect(() => fromHfConfig({ ...HF_GPT2, activation_function: 'relu' })).toThrow(
    /activation_function "relu" is not supported/,
  );
  expect(() => fromHfConfig({ ...HF_GPT2, n_inner: 1000 })).toThrow(/n_inner 1000 is not supported/);
  expect(fromHfConfig({ ...HF_GPT2, n_inner: 3072 }).config.n_embd).toBe(768);
  expect(() => fromHfConfig({ ...HF_GPT2, scale_attn_by_inverse_layer_idx: true })).toThrow(
    /scale_attn_by_inverse_layer_idx/,
  );
  expect(() => fromHfConfig({ ...HF_GPT2, n_head: 7 })).toThrow(/n_embd \(768\) must be divisible by n_head \(7\)/);
  expect(() => fromHfConfig({ ...HF_GPT2, n_layer: '12' })).toThrow(/n_layer must be an integer, got "12"/);
  expect(() => fromHfConfig([])).toThrow(/expected a JSON object/);
  expect(() => fromHfConfig({ ...HF_GPT2, hlm: 3 })).toThrow(/hlm entry must be an object/);
});

// A run schema: the model's keys plus a trainer's.
const RUN_SCHEMA: ConfigSchema = {
  ...MODEL_CONFIG_SCHEMA,
  lr: { type: 'number' },
  schedule: { type: 'enum', values: ['cosine', 'linear', 'constant'] },
  data: { type: 'string' },
};

test('--set overrides are typed by the schema', () => {
  const out = applyOverrides(
    preset('tiny'),
    ['n_layer=4', 'layer_norm_epsilon=1e-6', 'causal=false', 'mask_token_id=7', 'n_layer=6'],
    MODEL_CONFIG_SCHEMA,
  );
  expect(out).toMatchObject({ n_layer: 6, layer_norm_epsilon: 1e-6, causal: false, mask_token_id: 7 });
  expect(
    parseOverrides(['lr=3e-4', 'schedule=cosine', 'data=a=b.txt', 'eos_token_id=null', 'lr=-.5'], RUN_SCHEMA),
  ).toEqual({ lr: -0.5, schedule: 'cosine', data: 'a=b.txt', eos_token_id: null });
  expect(parseOverrides([], RUN_SCHEMA)).toEqual({});
  expect(pickModelConfig({ ...preset('tiny'), lr: 1, n_head: 8 }, preset('tiny')).n_head).toBe(8);
});

test('--set refuses unknown keys (with a suggestion) and badly typed values', () => {
  expect(() => parseOverrides(['n_layers=4'], RUN_SCHEMA)).toThrow(
    /--set: unknown key 'n_layers' \(did you mean n_layer\?\); known keys: .*vocab_size/,
  );
  expect(() => parseOverrides(['zzzzzzzz=4'], RUN_SCHEMA)).toThrow(/unknown key 'zzzzzzzz'; known/);
  expect(() => parseOverrides(['n_layer=4.5'], RUN_SCHEMA)).toThrow(/n_layer=4.5: n_layer must be an integer/);
  expect(() => parseOverrides(['n_layer=0x10'], RUN_SCHEMA)).toThrow(/n_layer must be an integer/);
  expect(() => parseOverrides(['n_layer='], RUN_SCHEMA)).toThrow(/n_layer must be an integer/);
  expect(() => parseOverrides(['lr=abc'], RUN_SCHEMA)).toThrow(/lr=abc: lr must be a number/);
  expect(() => parseOverrides(['lr=1e999'], RUN_SCHEMA)).toThrow(/lr must be a number/);
  expect(() => parseOverrides(['causal=maybe'], RUN_SCHEMA)).toThrow(/causal must be a boolean/);
  expect(() => parseOverrides(['n_layer=null'], RUN_SCHEMA)).toThrow(/n_layer must be an integer/);
  expect(() => parseOverrides(['schedule=cos'], RUN_SCHEMA)).toThrow(
    /schedule must be one of cosine\|linear\|constant/,
  );
  expect(() => parseOverrides(['n_layer'], RUN_SCHEMA)).toThrow(/expected key=value, got 'n_layer'/);
  expect(() => parseOverrides(['=4'], RUN_SCHEMA)).toThrow(/expected key=value/);
  expect(() => parseOverrides(['no-causal=1'], RUN_SCHEMA)).toThrow(/'no-causal' is not a setting name/);
});

test('config files are checked key by key, then overridden', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hlm-cfg-'));
  const good = join(dir, 'run.json');
  writeFileSync(good, JSON.stringify({ n_layer: 4, lr: 0.001, objective: 'cwt', mask_token_id: null }));
  expect(await readConfigFile(good, RUN_SCHEMA)).toEqual({
    n_layer: 4,
    lr: 0.001,
    objective: 'cwt',
    mask_token_id: null,
  });
  const resolved = await resolveSettings(
    { ...preset('tiny'), lr: 3e-4, schedule: 'cosine', data: '' },
    RUN_SCHEMA,
    good,
    ['lr=3e-4'],
  );
  expect(resolved).toMatchObject({ n_layer: 4, lr: 3e-4, objective: 'cwt', n_embd: 64 });

  const typo = join(dir, 'typo.json');
  writeFileSync(typo, JSON.stringify({ n_layers: 4 }));
  await expect(readConfigFile(typo, RUN_SCHEMA)).rejects.toThrow(
    new RegExp(`config file ${typo}: unknown key 'n_layers' \\(did you mean n_layer\\?\\)`),
  );
  const wrongType = join(dir, 'type.json');
  writeFileSync(wrongType, JSON.stringify({ n_layer: '4' }));
  await expect(readConfigFile(wrongType, RUN_SCHEMA)).rejects.toThrow(/n_layer must be an integer, got "4"/);
  const notJson = join(dir, 'bad.json');
  writeFileSync(notJson, '{ n_layer: 4 ');
  await expect(readConfigFile(notJson, RUN_SCHEMA)).rejects.toThrow(/is not valid JSON/);
  await expect(readConfigFile(join(dir, 'missing.json'), RUN_SCHEMA)).rejects.toThrow(/cannot read config file/);
  writeFileSync(notJson, '[1]');
  await expect(readConfigFile(notJson, RUN_SCHEMA)).rejects.toThrow(/expected a JSON object/);
});
