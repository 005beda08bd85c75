// The transformer's shape and objective, its presets, and its Hugging Face form.
//
// Field names are Hugging Face GPT-2's (vocab_size, n_embd, ...) so that a config.json, a
// `--set n_layer=4` and the code all say the same thing. What GPT-2's config cannot say
// (objective, causal, mask token, classifier width) lives in the `hlm` object of config.json.
import { HlmError } from '../errors.js';
import type { ConfigSchema } from './overrides.js';

export type Objective = 'ce' | 'cwt';
export const OBJECTIVES: readonly Objective[] = ['ce', 'cwt'];

export interface ModelConfig {
  vocab_size: number;
  n_positions: number;
  n_embd: number;
  n_layer: number;
  n_head: number;
  layer_norm_epsilon: number;
  /** true: decoder (next-token, causal attention); false: encoder (masked tokens, full attention). */
  causal: boolean;
  objective: Objective;
  /** Output projection = input embeddings. When false the layout adds `lm_head.weight`. */
  tie_word_embeddings: boolean;
  /** The token an encoder's inputs are masked with; required when causal is false. */
  mask_token_id: number | null;
  /** End-of-text token (GPT-2: 50256), written as HF's bos/eos_token_id; null when unknown. */
  eos_token_id: number | null;
  /** Width of a classifier/regressor head (`score.weight` [C,d], `score.bias` [C]); 0 = none. */
  num_labels: number;
}

export const GPT2_VOCAB_SIZE = 50257;
export const GPT2_EOT = 50256;

const common = {
  vocab_size: GPT2_VOCAB_SIZE,
  layer_norm_epsilon: 1e-5,
  causal: true,
  objective: 'ce' as Objective,
  tie_word_embeddings: true,
  mask_token_id: null,
  // Set from the tokenizer when one is chosen (GPT-2's is GPT2_EOT); null keeps a preset valid under any --set
  // vocab_size.
  eos_token_id: null,
  num_labels: 0,
};

// tiny: 2 layers of d=64 are ~0.1 M body parameters next to the 3.2 M of the GPT-2 embedding
// table; on a ~13 GFLOP/s software adapter a step of 8×128 tokens costs about a second,
// nearly all of it the CE head's V×d product, so a few hundred steps fit in a few minutes
// (CWT, with no vocabulary product, is faster still).
// small: Pythia-70M's body (6×512, 8 heads) with GPT-2's vocabulary and context.
// base: GPT-2 small (124 M parameters with the tied head).
export const PRESETS = {
  tiny: { ...common, n_positions: 128, n_embd: 64, n_layer: 2, n_head: 4 },
  small: { ...common, n_positions: 1024, n_embd: 512, n_layer: 6, n_head: 8 },
  base: { ...common, n_positions: 1024, n_embd: 768, n_layer: 12, n_head: 12 },
} as const satisfies Record<string, ModelConfig>;

export type PresetName = keyof typeof PRESETS;
export const PRESET_NAMES = Object.keys(PRESETS) as PresetName[];

/** A fresh copy of a preset. */
export function preset(name: string): ModelConfig {
  if (!Object.prototype.hasOwnProperty.call(PRESETS, name))
    throw new HlmError(`unknown preset '${name}'; presets: ${PRESET_NAMES.join(', ')}`);
  return { ...PRESETS[name as PresetName] };
}

/**
 * Types and ranges of the model's keys, for config files and `--set` (merged with the training keys of
 * src/train/pretrain-settings.ts). validateConfig adds what relates keys to each other.
 */
export const MODEL_CONFIG_SCHEMA: ConfigSchema = {
  vocab_size: { type: 'int', min: 1 },
  n_positions: { type: 'int', min: 1 },
  n_embd: { type: 'int', min: 1 },
  n_layer: { type: 'int', min: 1 },
  n_head: { type: 'int', min: 1 },
  layer_norm_epsilon: { type: 'number', exclusiveMin: 0 },
  causal: { type: 'boolean' },
  objective: { type: 'enum', values: OBJECTIVES },
  tie_word_embeddings: { type: 'boolean' },
  mask_token_id: { type: 'int', nullable: true, min: 0 },
  eos_token_id: { type: 'int', nullable: true, min: 0 },
  num_labels: { type: 'int', min: 0 },
};

export const MODEL_CONFIG_KEYS = Object.keys(MODEL_CONFIG_SCHEMA) as (keyof ModelConfig)[];

/** The model's keys of a flat run configuration (which also holds lr, steps, ...), over `base`. */
export function pickModelConfig(settings: Record<string, unknown>, base: ModelConfig): ModelConfig {
  const out = { ...base } as Record<string, unknown>;
  for (const k of MODEL_CONFIG_KEYS) if (settings[k] !== undefined) out[k] = settings[k];
  return validateConfig(out as unknown as ModelConfig);
}

export function headDim(c: ModelConfig): number {
  return c.n_embd / c.n_head;
}

/** Check a configuration; returns it unchanged, or throws an HlmError naming the bad key. */
export function validateConfig(c: ModelConfig, where = 'model config'): ModelConfig {
  const fail = (msg: string) => new HlmError(`${where}: ${msg}`);
  for (const k of ['vocab_size', 'n_positions', 'n_embd', 'n_layer', 'n_head'] as const) {
    const v = c[k];
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
      throw fail(`${k} must be a positive integer, got ${JSON.stringify(v)}`);
  }
  if (c.n_embd % c.n_head !== 0) throw fail(`n_embd (${c.n_embd}) must be divisible by n_head (${c.n_head})`);
  if (
    typeof c.layer_norm_epsilon !== 'number' ||
    !(c.layer_norm_epsilon > 0) ||
    !Number.isFinite(c.layer_norm_epsilon)
  ) {
    throw fail(`layer_norm_epsilon must be a positive number, got ${JSON.stringify(c.layer_norm_epsilon)}`);
  }
  if (typeof c.causal !== 'boolean') throw fail(`causal must be true or false, got ${JSON.stringify(c.causal)}`);
  if (!OBJECTIVES.includes(c.objective))
    throw fail(`objective must be one of ${OBJECTIVES.join('|')}, got ${JSON.stringify(c.objective)}`);
  if (typeof c.tie_word_embeddings !== 'boolean')
    throw fail(`tie_word_embeddings must be true or false, got ${JSON.stringify(c.tie_word_embeddings)}`);
  // CWT scores hidden states against the input embeddings: there is no separate output matrix to untie.
  if (c.objective === 'cwt' && !c.tie_word_embeddings)
    throw fail('objective cwt uses the input embeddings as its targets: tie_word_embeddings must be true');
  for (const k of ['mask_token_id', 'eos_token_id'] as const) {
    const v = c[k];
    if (v === null) continue;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0 || v >= c.vocab_size) {
      throw fail(`${k} must be null or a token id in [0, ${c.vocab_size}), got ${JSON.stringify(v)}`);
    }
  }
  if (!c.causal && c.mask_token_id === null)
    throw fail('an encoder (causal false) needs mask_token_id, the token its inputs are masked with');
  if (typeof c.num_labels !== 'number' || !Number.isSafeInteger(c.num_labels) || c.num_labels < 0) {
    throw fail(`num_labels must be a non-negative integer, got ${JSON.stringify(c.num_labels)}`);
  }
  return c;
}

/** model_type of what Hugging Face's GPT-2 classes would run wrongly: an encoder (bidirectional attention). */
export const HLM_ENCODER_MODEL_TYPE = 'hlm_encoder';
/** model_type of a decoder classifier GPT2ForSequenceClassification cannot reproduce (its pooling or its bias). */
export const HLM_CLASSIFIER_MODEL_TYPE = 'hlm_classifier';

export interface HfClassifierOptions {
  /** How the classifier pools the hidden states (default: a decoder's last real token). */
  pooling?: 'mean' | 'first' | 'last';
  /** score.bias is not zero (GPT2ForSequenceClassification has no bias: see foldScoreBias). Default false. */
  scoreBias?: boolean;
  /** Label names, id2label's values (default LABEL_i). */
  labels?: readonly string[] | null;
}

/**
 * Hugging Face GPT-2 config.json keys, plus the `hlm` object (open: the trainer adds step, data position, tokenizer).
 * What Hugging Face's GPT-2 classes compute as hlm does keeps model_type "gpt2": decoders (GPT2LMHeadModel) and
 * decoder classifiers that pool the last token without a bias (GPT2ForSequenceClassification, with pad_token_id =
 * vocab_size, an id no input holds, so that it pools the last token). Encoders (model_type hlm_encoder) and other
 * classifiers (hlm_classifier) get a model_type transformers does not know: AutoModel refuses them, and a GPT-2 class
 * loading them directly warns that the model types differ.
 */
export function toHfConfig(
  c: ModelConfig,
  hlm: Record<string, unknown> = {},
  classifier: HfClassifierOptions = {},
  torchDtype: 'float32' | 'float16' = 'float32',
): Record<string, unknown> {
  validateConfig(c);
  const C = c.num_labels;
  const hfClassifier = C > 0 && c.causal && (classifier.pooling ?? 'last') === 'last' && !classifier.scoreBias;
  const modelType = !c.causal ? HLM_ENCODER_MODEL_TYPE : C > 0 && !hfClassifier ? HLM_CLASSIFIER_MODEL_TYPE : 'gpt2';
  const out: Record<string, unknown> = {
    model_type: modelType,
    architectures: [modelType !== 'gpt2' ? 'GPT2Model' : C > 0 ? 'GPT2ForSequenceClassification' : 'GPT2LMHeadModel'],
    vocab_size: c.vocab_size,
    n_positions: c.n_positions,
    n_embd: c.n_embd,
    n_layer: c.n_layer,
    n_head: c.n_head,
    n_inner: null,
    activation_function: 'gelu_new',
    layer_norm_epsilon: c.layer_norm_epsilon,
    initializer_range: 0.02,
    // hlm trains without dropout; saying so keeps a Hugging Face fine-tune on the same model.
    resid_pdrop: 0,
    embd_pdrop: 0,
    attn_pdrop: 0,
    scale_attn_weights: true,
    scale_attn_by_inverse_layer_idx: false,
    reorder_and_upcast_attn: false,
    tie_word_embeddings: c.tie_word_embeddings,
  };
  // An encoder attends both ways: no decoder, no cross-attention.
  if (!c.causal) Object.assign(out, { is_decoder: false, add_cross_attention: false });
  // Written even when null: GPT2Config would otherwise default both to 50256.
  out.bos_token_id = c.eos_token_id;
  out.eos_token_id = c.eos_token_id;
  if (C > 0) {
    const labels =
      classifier.labels && classifier.labels.length === C
        ? classifier.labels
        : Array.from({ length: C }, (_, i) => `LABEL_${i}`);
    out.num_labels = C;
    out.id2label = Object.fromEntries(labels.map((l, i) => [String(i), l]));
    out.label2id = Object.fromEntries(labels.map((l, i) => [l, i]));
    out.problem_type = C === 1 ? 'regression' : 'single_label_classification';
    // GPT2ForSequenceClassification pools the last token that is not pad_token_id; hlm's inputs end in the
    // end-of-text token, where hlm pools, so the pad id must be one no input holds.
    if (hfClassifier) out.pad_token_id = c.vocab_size;
  }
  out.torch_dtype = torchDtype;
  // The model's own keys win over same-named extras, so config.json never contradicts the weights.
  out.hlm = {
    ...hlm,
    objective: c.objective,
    causal: c.causal,
    mask_token_id: c.mask_token_id,
    num_labels: c.num_labels,
  };
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Read a Hugging Face GPT-2 config.json (hlm's own or a plain HF one). Missing keys take
 * GPT2Config's defaults, as transformers does; features hlm does not implement are refused.
 */
export function fromHfConfig(
  json: unknown,
  where = 'config.json',
): { config: ModelConfig; hlm: Record<string, unknown> } {
  if (!isObject(json)) throw new HlmError(`${where}: expected a JSON object`);
  const fail = (msg: string) => new HlmError(`${where}: ${msg}`);
  const modelTypes = ['gpt2', HLM_ENCODER_MODEL_TYPE, HLM_CLASSIFIER_MODEL_TYPE];
  if (json.model_type !== undefined && !modelTypes.includes(json.model_type as string)) {
    throw fail(
      `model_type is ${JSON.stringify(json.model_type)}; hlm reads GPT-2 checkpoints (model_type "gpt2", or hlm's ` +
        `"${HLM_ENCODER_MODEL_TYPE}" and "${HLM_CLASSIFIER_MODEL_TYPE}") only`,
    );
  }
  const int = (key: string, dflt: number): number => {
    const v = json[key] ?? dflt;
    if (typeof v !== 'number' || !Number.isSafeInteger(v))
      throw fail(`${key} must be an integer, got ${JSON.stringify(v)}`);
    return v;
  };
  const n_embd = int('n_embd', 768);
  const act = json.activation_function ?? 'gelu_new';
  if (act !== 'gelu_new' && act !== 'gelu_pytorch_tanh') {
    throw fail(
      `activation_function ${JSON.stringify(act)} is not supported: hlm's MLP uses GELU's tanh approximation ` +
        `(gelu_new)`,
    );
  }
  if (json.n_inner !== undefined && json.n_inner !== null && json.n_inner !== 4 * n_embd) {
    throw fail(
      `n_inner ${JSON.stringify(json.n_inner)} is not supported: hlm's MLP is 4 × n_embd = ${4 * n_embd} wide`,
    );
  }
  if (json.scale_attn_by_inverse_layer_idx === true) throw fail('scale_attn_by_inverse_layer_idx is not supported');
  if (json.scale_attn_weights === false)
    throw fail('scale_attn_weights false is not supported: hlm scales attention scores by 1/sqrt(head size)');
  if (json.add_cross_attention === true) throw fail('add_cross_attention is not supported');
  const tie = json.tie_word_embeddings ?? true;
  if (typeof tie !== 'boolean') throw fail(`tie_word_embeddings must be true or false, got ${JSON.stringify(tie)}`);
  const eps = json.layer_norm_epsilon ?? 1e-5;
  const eos = json.eos_token_id ?? null;
  if (json.hlm !== undefined && !isObject(json.hlm)) throw fail('the hlm entry must be an object');
  const { objective, causal, mask_token_id, num_labels, ...rest } = (json.hlm ?? {}) as Record<string, unknown>;
  if (json.model_type === HLM_ENCODER_MODEL_TYPE && causal !== false)
    throw fail(`model_type ${HLM_ENCODER_MODEL_TYPE} marks an encoder, but hlm.causal is ${JSON.stringify(causal)}`);
  const architectures = Array.isArray(json.architectures) ? json.architectures : [];
  let labels = num_labels;
  if (labels === undefined) {
    const classifier = architectures.includes('GPT2ForSequenceClassification');
    labels = classifier ? (json.num_labels ?? (isObject(json.id2label) ? Object.keys(json.id2label).length : 2)) : 0;
  }
  const config: ModelConfig = {
    vocab_size: int('vocab_size', 50257),
    n_positions: int('n_positions', typeof json.n_ctx === 'number' ? json.n_ctx : 1024),
    n_embd,
    n_layer: int('n_layer', 12),
    n_head: int('n_head', 12),
    layer_norm_epsilon: eps as number,
    causal: (causal ?? true) as boolean,
    objective: (objective ?? 'ce') as Objective,
    tie_word_embeddings: tie,
    mask_token_id: (mask_token_id ?? null) as number | null,
    // HF allows a list of end tokens; hlm needs one, the first.
    eos_token_id: (Array.isArray(eos) ? (eos[0] ?? null) : eos) as number | null,
    num_labels: labels as number,
  };
  return { config: validateConfig(config, where), hlm: rest };
}
