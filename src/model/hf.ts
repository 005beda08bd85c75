// What Hugging Face tooling needs beside config.json and model.safetensors, and what it must
// not be able to misread (src/model/config.ts's toHfConfig marks the model kinds):
// - tokenizer_config.json and special_tokens_map.json, as transformers writes them for GPT-2
//   (bos, eos and unk are the end-of-text token; an encoder's mask token is mask_token;
//   model_max_length is n_positions), so AutoTokenizer loads the checkpoint's tokenizer.json;
// - a classifier's bias folded away: GPT2ForSequenceClassification's score layer has no bias,
//   so score.bias b is moved into the final LayerNorm's bias, which only the score layer reads:
//   ln_f.bias += δ with W·δ = b (δ = Wᵀ(WWᵀ)⁻¹b, the smallest such), after which W·h' = W·h + b
//   for every hidden state and score.bias is zero (and left out of model.safetensors);
// - reading a sharded model (model.safetensors.index.json and its shards), as Hugging Face
//   saves large ones.
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { HlmError } from '../errors.js';
import type { ModelConfig } from './config.js';
import { paramLayout } from './params.js';
import { readSafetensorsFile, type SafeTensor, type SafetensorsFile } from './safetensors.js';

export const TOKENIZER_CONFIG_FILE = 'tokenizer_config.json';
export const SPECIAL_TOKENS_FILE = 'special_tokens_map.json';
export const SHARD_INDEX_FILE = 'model.safetensors.index.json';

interface AddedToken {
  id: number;
  content: string;
  single_word?: boolean;
  lstrip?: boolean;
  rstrip?: boolean;
  normalized?: boolean;
  special?: boolean;
}

/** tokenizer_config.json and special_tokens_map.json for a checkpoint's tokenizer.json. */
export function hfTokenizerFiles(tokenizerJson: string, config: ModelConfig): Record<string, string> {
  let doc: {
    model?: { type?: string };
    pre_tokenizer?: { type?: string } | null;
    decoder?: { type?: string } | null;
    added_tokens?: AddedToken[];
  };
  try {
    doc = JSON.parse(tokenizerJson);
  } catch (e) {
    throw new HlmError(`tokenizer.json is not valid JSON: ${(e as Error).message}`);
  }
  const added = doc.added_tokens ?? [];
  const content = (id: number | null) => (id === null ? undefined : added.find((t) => t.id === id)?.content);
  const eos = content(config.eos_token_id);
  const mask = config.causal ? undefined : content(config.mask_token_id);
  if (!config.causal && mask === undefined)
    throw new HlmError(`tokenizer.json has no added token at the mask id ${config.mask_token_id}`);
  const byteLevel = doc.model?.type === 'BPE' && (doc.pre_tokenizer?.type ?? doc.decoder?.type) === 'ByteLevel';
  const special: Record<string, string> = {};
  if (eos !== undefined) Object.assign(special, { bos_token: eos, eos_token: eos, unk_token: eos });
  if (mask !== undefined) special.mask_token = mask;
  const tokenizerConfig = {
    add_bos_token: false,
    add_prefix_space: false,
    added_tokens_decoder: Object.fromEntries(
      [...added]
        .sort((a, b) => a.id - b.id)
        .map((t) => [
          String(t.id),
          {
            content: t.content,
            lstrip: t.lstrip ?? false,
            normalized: t.normalized ?? false,
            rstrip: t.rstrip ?? false,
            single_word: t.single_word ?? false,
            special: t.special ?? true,
          },
        ]),
    ),
    ...special,
    // hlm decodes without the clean-up (" ." stays " ."); so does the tokenizer Hugging Face loads.
    clean_up_tokenization_spaces: false,
    errors: 'replace',
    model_max_length: config.n_positions,
    pad_token: null,
    tokenizer_class: byteLevel ? 'GPT2Tokenizer' : 'PreTrainedTokenizerFast',
  };
  return {
    [TOKENIZER_CONFIG_FILE]: JSON.stringify(tokenizerConfig, null, 2) + '\n',
    [SPECIAL_TOKENS_FILE]: JSON.stringify(special, null, 2) + '\n',
  };
}

/** Solve A·x = b (n×n, row-major) by Gaussian elimination with partial pivoting; null when A is singular. */
function solve(A: Float64Array, b: Float64Array, n: number): Float64Array | null {
  const a = Float64Array.from(A);
  const x = Float64Array.from(b);
  let scale = 0;
  for (const v of a) scale = Math.max(scale, Math.abs(v));
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(a[r * n + c]) > Math.abs(a[p * n + c])) p = r;
    if (!(Math.abs(a[p * n + c]) > 1e-12 * scale)) return null;
    if (p !== c) {
      for (let k = 0; k < n; k++) [a[c * n + k], a[p * n + k]] = [a[p * n + k], a[c * n + k]];
      [x[c], x[p]] = [x[p], x[c]];
    }
    for (let r = c + 1; r < n; r++) {
      const f = a[r * n + c] / a[c * n + c];
      for (let k = c; k < n; k++) a[r * n + k] -= f * a[c * n + k];
      x[r] -= f * x[c];
    }
  }
  for (let c = n - 1; c >= 0; c--) {
    for (let k = c + 1; k < n; k++) x[c] -= a[c * n + k] * x[k];
    x[c] /= a[c * n + c];
  }
  return x;
}

/**
 * A classifier's parameters with score.bias folded into transformer.ln_f.bias (see the header): same logits, a zero
 * score.bias. Null when it cannot be folded exactly (score.weight's rows linearly dependent). `params` is not changed.
 */
export function foldScoreBias(config: ModelConfig, params: Float32Array): Float32Array | null {
  const layout = paramLayout(config);
  const C = config.num_labels;
  const d = config.n_embd;
  if (C < 1) throw new HlmError('foldScoreBias: the model has no classifier head');
  const at = (name: string) => layout.byName.get(name)!.offset;
  const W = Float64Array.from(params.subarray(at('score.weight'), at('score.weight') + C * d));
  const b = Float64Array.from(params.subarray(at('score.bias'), at('score.bias') + C));
  const out = Float32Array.from(params);
  if (b.every((x) => x === 0)) return out;
  const G = new Float64Array(C * C);
  for (let i = 0; i < C; i++)
    for (let j = 0; j < C; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += W[i * d + k] * W[j * d + k];
      G[i * C + j] = s;
    }
  const y = solve(G, b, C);
  if (!y) return null;
  const delta = new Float64Array(d);
  for (let i = 0; i < C; i++) for (let k = 0; k < d; k++) delta[k] += W[i * d + k] * y[i];
  // Check W·δ = b before trusting it.
  for (let i = 0; i < C; i++) {
    let s = 0;
    for (let k = 0; k < d; k++) s += W[i * d + k] * delta[k];
    if (!(Math.abs(s - b[i]) <= 1e-9 * (1 + Math.abs(b[i])))) return null;
  }
  const beta = at('transformer.ln_f.bias');
  for (let k = 0; k < d; k++) out[beta + k] = params[beta + k] + delta[k];
  out.fill(0, at('score.bias'), at('score.bias') + C);
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** A sharded model's tensors, read through its index, as one file (messages name the index and the shard). */
export async function readShardedSafetensors(indexPath: string): Promise<SafetensorsFile> {
  let index: unknown;
  try {
    index = JSON.parse(await readFile(indexPath, 'utf8'));
  } catch (e) {
    throw new HlmError(`cannot read ${indexPath}: ${(e as Error).message}`);
  }
  const map = isObject(index) ? index.weight_map : undefined;
  if (!isObject(map) || !Object.values(map).every((f) => typeof f === 'string'))
    throw new HlmError(`${indexPath}: expected {"weight_map": {tensor name: shard file}}`);
  const shards = [...new Set(Object.values(map) as string[])];
  const tensors = new Map<string, SafeTensor>();
  for (const shard of shards) {
    if (shard.includes('/') || shard.includes('\\') || shard.startsWith('.'))
      throw new HlmError(`${indexPath}: shard '${shard}' must be a file name beside the index`);
    const file = await readSafetensorsFile(join(dirname(indexPath), shard));
    for (const [name, t] of file.tensors) {
      if (map[name] === undefined) continue;
      if (map[name] !== shard)
        throw new HlmError(`${indexPath}: tensor '${name}' is in ${shard}, but the index puts it in ${map[name]}`);
      tensors.set(name, t);
    }
  }
  for (const [name, shard] of Object.entries(map))
    if (!tensors.has(name)) throw new HlmError(`${indexPath}: tensor '${name}' is not in its shard ${shard}`);
  return { tensors, metadata: {}, where: indexPath };
}
