"""hlm checkpoint directories in Python, both ways (src/model/checkpoint.ts, src/model/params.ts,
src/model/safetensors.ts, src/model/config.ts): config.json (Hugging Face GPT-2 keys plus an `hlm` object),
model.safetensors (float32, Hugging Face names), optimizer.safetensors (AdamW moments over hlm's flat parameter
layout, and the step; beside an F16 model.safetensors, hlm's float32 weights, master_weights, which a resume reads
instead), tokenizer.json (with Hugging Face's tokenizer_config.json and special_tokens_map.json, carried
over unchanged) and run.json. Files are written byte for byte as hlm writes them, and a save
is atomic in hlm's way (a temporary sibling directory renamed into place, the old one moved aside first), so
`hlm pretrain --resume` and hlm's other commands read the result. Needs only numpy.
"""

import json
import os
import shutil
import struct
import tempfile

import numpy as np

from hlm_data import DataError as CheckpointError

PARAM_ALIGN = 64
CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE, TOKENIZER_FILE, RUN_FILE = (
    'config.json',
    'model.safetensors',
    'optimizer.safetensors',
    'tokenizer.json',
    'run.json',
)
TOKENIZER_EXTRA_FILES = ('tokenizer_config.json', 'special_tokens_map.json')
STANDARD_FILES = (CONFIG_FILE, MODEL_FILE, OPTIMIZER_FILE, TOKENIZER_FILE) + TOKENIZER_EXTRA_FILES
# model/config.ts's HLM_ENCODER_MODEL_TYPE: a model_type transformers does not know, so it never runs an encoder
# causally.
ENCODER_MODEL_TYPE = 'hlm_encoder'
BLOCK_TENSORS = [
    ('ln_1.weight', lambda d: [d]),
    ('ln_1.bias', lambda d: [d]),
    ('attn.c_attn.weight', lambda d: [d, 3 * d]),
    ('attn.c_attn.bias', lambda d: [3 * d]),
    ('attn.c_proj.weight', lambda d: [d, d]),
    ('attn.c_proj.bias', lambda d: [d]),
    ('ln_2.weight', lambda d: [d]),
    ('ln_2.bias', lambda d: [d]),
    ('mlp.c_fc.weight', lambda d: [d, 4 * d]),
    ('mlp.c_fc.bias', lambda d: [4 * d]),
    ('mlp.c_proj.weight', lambda d: [4 * d, d]),
    ('mlp.c_proj.bias', lambda d: [d]),
]
# The reference implementation's dtypes in order of increasing alignment: a writer sorts by it, descending.
DTYPES = [
    'BOOL',
    'U8',
    'I8',
    'F8_E5M2',
    'F8_E4M3',
    'I16',
    'U16',
    'F16',
    'BF16',
    'I32',
    'U32',
    'F32',
    'F64',
    'I64',
    'U64',
]
NUMPY = {'F32': '<f4', 'F64': '<f8', 'F16': '<f2', 'I64': '<i8', 'I32': '<i4', 'U16': '<u2', 'BF16': '<u2'}
GPT2 = {'vocab_size': 50257, 'eot': 50256}
MASK_TOKEN = '<|mask|>'
EOT_TOKENS = ['<|endoftext|>', '</s>', '<|end_of_text|>', '<eos>', '<|eot_id|>', '[SEP]']


def param_layout(cfg):
    """paramLayout: [(name, shape, offset, decay)] of the flat buffer (tensors on 64-float boundaries), total."""
    V, P, d, L = cfg['vocab_size'], cfg['n_positions'], cfg['n_embd'], cfg['n_layer']
    shapes = [('transformer.wte.weight', [V, d]), ('transformer.wpe.weight', [P, d])]
    for i in range(L):
        shapes += [(f'transformer.h.{i}.{name}', shape(d)) for name, shape in BLOCK_TENSORS]
    shapes += [('transformer.ln_f.weight', [d]), ('transformer.ln_f.bias', [d])]
    out, offset = [], 0
    for name, shape in shapes:
        out.append((name, shape, offset, len(shape) >= 2))
        offset += -(-int(np.prod(shape)) // PARAM_ALIGN) * PARAM_ALIGN
    return out, offset


# ---------------------------------------------------------------- safetensors


def read_safetensors(path, dtypes=None):
    """{name: float32 or int64 array}, metadata (and each tensor's dtype into `dtypes` when given). Refuses what
    hlm's reader refuses that matters here."""
    with open(path, 'rb') as f:
        data = f.read()
    if len(data) < 8:
        raise CheckpointError(f'{path}: file is {len(data)} bytes, too short to hold the 8-byte header length')
    (n,) = struct.unpack('<Q', data[:8])
    if 8 + n > len(data):
        raise CheckpointError(f'{path}: header length {n} (bytes 0-7) runs past the end of the file (truncated?)')
    try:
        header = json.loads(data[8 : 8 + n])
    except ValueError as e:
        raise CheckpointError(f'{path}: header (bytes 8-{8 + n}) is not valid JSON: {e}')
    metadata = header.pop('__metadata__', {})
    out, body = {}, memoryview(data)[8 + n :]
    for name, t in header.items():
        dtype, shape, (a, b) = t['dtype'], t['shape'], t['data_offsets']
        if dtype not in NUMPY:
            raise CheckpointError(f"{path}: tensor '{name}' has dtype {dtype}, which hlm's checkpoints do not use")
        if b > len(body) or b - a != int(np.prod(shape)) * np.dtype(NUMPY[dtype]).itemsize:
            raise CheckpointError(f"{path}: tensor '{name}': data_offsets [{a}, {b}] do not fit (truncated?)")
        arr = np.frombuffer(body[a:b], dtype=NUMPY[dtype]).reshape(shape)
        if dtype == 'BF16':
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        out[name] = arr.astype(np.int64 if dtype[0] in 'IU' and dtype != 'BF16' else np.float32)
        if dtypes is not None:
            dtypes[name] = dtype
    return out, metadata


def safetensors_bytes(tensors, metadata=None):
    """serializeSafetensors: tensors by descending dtype alignment then name, compact JSON, space-padded to 8."""
    order = sorted(tensors.items(), key=lambda kv: (-DTYPES.index(kv[1][0]), kv[0].encode()))
    parts = []
    if metadata is not None:
        parts.append(
            '"__metadata__":{' + ','.join(f'{json.dumps(k)}:{json.dumps(metadata[k])}' for k in sorted(metadata)) + '}'
        )
    offset, blobs = 0, []
    for name, (dtype, shape, arr) in order:
        blob = np.ascontiguousarray(arr, dtype=NUMPY[dtype]).tobytes()
        shape_text = ','.join(str(s) for s in shape)
        span = f'[{offset},{offset + len(blob)}]'
        parts.append(f'{json.dumps(name)}:{{"dtype":"{dtype}","shape":[{shape_text}],"data_offsets":{span}}}')
        offset += len(blob)
        blobs.append(blob)
    head = ('{' + ','.join(parts) + '}').encode()
    head += b' ' * (-len(head) % 8)
    return struct.pack('<Q', len(head)) + head + b''.join(blobs)


# ---------------------------------------------------------------- config.json (model/config.ts)


def model_config(doc, where):
    """fromHfConfig, for what the PyTorch model needs; refuses what it cannot run exactly as hlm does."""
    hlm = dict(doc.get('hlm') or {})
    model_type = doc.get('model_type', 'gpt2')
    if model_type != 'gpt2' and not (model_type == ENCODER_MODEL_TYPE and hlm.get('causal') is False):
        raise CheckpointError(f'{where}: model_type is {doc["model_type"]!r}; hlm reads GPT-2 checkpoints only')
    eos = doc.get('eos_token_id')
    cfg = {
        'vocab_size': doc.get('vocab_size', 50257),
        'n_positions': doc.get('n_positions', doc.get('n_ctx', 1024)),
        'n_embd': doc.get('n_embd', 768),
        'n_layer': doc.get('n_layer', 12),
        'n_head': doc.get('n_head', 12),
        'layer_norm_epsilon': doc.get('layer_norm_epsilon', 1e-5),
        'causal': hlm.pop('causal', True),
        'objective': hlm.pop('objective', 'ce'),
        'tie_word_embeddings': doc.get('tie_word_embeddings', True),
        'mask_token_id': hlm.pop('mask_token_id', None),
        'eos_token_id': (eos[0] if eos else None) if isinstance(eos, list) else eos,
        'num_labels': hlm.pop('num_labels', 0),
    }
    if doc.get('activation_function', 'gelu_new') not in ('gelu_new', 'gelu_pytorch_tanh'):
        raise CheckpointError(f'{where}: activation_function {doc["activation_function"]!r} is not GELU tanh')
    if doc.get('n_inner') not in (None, 4 * cfg['n_embd']):
        raise CheckpointError(f'{where}: n_inner {doc["n_inner"]} is not 4 x n_embd')
    if cfg['layer_norm_epsilon'] != 1e-5:
        raise CheckpointError(f'{where}: layer_norm_epsilon {cfg["layer_norm_epsilon"]}: train_ddp.py runs 1e-5 only')
    if not cfg['tie_word_embeddings']:
        raise CheckpointError(f'{where}: an untied output layer (lm_head.weight) is not supported by train_ddp.py')
    if cfg['num_labels']:
        raise CheckpointError(
            f'{where}: a classifier checkpoint (num_labels {cfg["num_labels"]}) is not a language model'
        )
    if not cfg['causal'] and cfg['mask_token_id'] is None:
        raise CheckpointError(f'{where}: an encoder (causal false) needs mask_token_id')
    if cfg['n_embd'] % cfg['n_head']:
        raise CheckpointError(f'{where}: n_embd ({cfg["n_embd"]}) must be divisible by n_head ({cfg["n_head"]})')
    return cfg, hlm


def hf_config(cfg, hlm):
    """toHfConfig: Hugging Face GPT-2 keys, then the hlm object with the model's own keys last."""
    encoder = {'is_decoder': False, 'add_cross_attention': False} if not cfg['causal'] else {}
    return {
        'model_type': 'gpt2' if cfg['causal'] else ENCODER_MODEL_TYPE,
        'architectures': ['GPT2LMHeadModel' if cfg['causal'] else 'GPT2Model'],
        'vocab_size': cfg['vocab_size'],
        'n_positions': cfg['n_positions'],
        'n_embd': cfg['n_embd'],
        'n_layer': cfg['n_layer'],
        'n_head': cfg['n_head'],
        'n_inner': None,
        'activation_function': 'gelu_new',
        'layer_norm_epsilon': cfg['layer_norm_epsilon'],
        'initializer_range': 0.02,
        'resid_pdrop': 0,
        'embd_pdrop': 0,
        'attn_pdrop': 0,
        'scale_attn_weights': True,
        'scale_attn_by_inverse_layer_idx': False,
        'reorder_and_upcast_attn': False,
        'tie_word_embeddings': cfg['tie_word_embeddings'],
        **encoder,
        'bos_token_id': cfg['eos_token_id'],
        'eos_token_id': cfg['eos_token_id'],
        'torch_dtype': 'float32',
        'hlm': {
            **hlm,
            'objective': cfg['objective'],
            'causal': cfg['causal'],
            'mask_token_id': cfg['mask_token_id'],
            'num_labels': cfg['num_labels'],
        },
    }


def tokenizer_info(tokenizer_json, cfg):
    """The tokenizer's base vocabulary size, its special ids and end-of-text id, as hlm's Tokenizer reports them."""
    if tokenizer_json is None:
        return {'vocab_size': GPT2['vocab_size'], 'special_ids': [GPT2['eot']], 'eot': GPT2['eot']}
    doc = json.loads(tokenizer_json)
    vocab = dict((doc.get('model') or {}).get('vocab') or {})
    added = doc.get('added_tokens') or []
    for t in added:
        vocab[t['content']] = t['id']
    mask_at = vocab.get(MASK_TOKEN)
    if mask_at is not None and any(t['content'] == MASK_TOKEN for t in added):
        if mask_at == max([i for k, i in vocab.items() if k != MASK_TOKEN], default=-1) + 1:
            added = [t for t in added if t['content'] != MASK_TOKEN]
            del vocab[MASK_TOKEN]
    eot = next((vocab[t] for t in EOT_TOKENS if t in vocab), cfg['eos_token_id'])
    special = sorted(set([t['id'] for t in added if t.get('special')] + ([eot] if eot is not None else [])))
    return {'vocab_size': max(vocab.values(), default=-1) + 1, 'special_ids': special, 'eot': eot}


# ---------------------------------------------------------------- directories


def _old_sibling(target):
    return os.path.join(os.path.dirname(target), f'.{os.path.basename(target)}.hlm-old')


def readable_dir(path):
    """The directory to read: the target, or the old sibling a save left when it died between its renames."""
    target = os.path.abspath(path)
    if os.path.exists(target):
        return target
    if os.path.exists(os.path.join(_old_sibling(target), CONFIG_FILE)):
        return _old_sibling(target)
    raise CheckpointError(f'checkpoint directory {target} does not exist')


def load_checkpoint(path, optimizer=True):
    """config, hlm extras, {layout name: float32 array}, optimizer {step, m, v} or None, tokenizer.json text."""
    src = readable_dir(path)
    cpath = os.path.join(src, CONFIG_FILE)
    try:
        with open(cpath) as f:
            doc = json.load(f)
    except OSError:
        raise CheckpointError(f'{src} is not a checkpoint directory: it has no {CONFIG_FILE}')
    except ValueError as e:
        raise CheckpointError(f'{cpath} is not valid JSON: {e}')
    cfg, hlm = model_config(doc, cpath)
    layout, total = param_layout(cfg)
    mpath = os.path.join(src, MODEL_FILE)
    if not os.path.exists(mpath):
        raise CheckpointError(f'{src} has no {MODEL_FILE}')
    raw = {}
    found, _ = read_safetensors(mpath, raw)
    canon = lambda n: n if n.startswith(('transformer.', 'lm_head.', 'score.')) else f'transformer.{n}'  # noqa: E731
    found = {canon(n): t for n, t in found.items()}
    dtypes = {canon(n): d for n, d in raw.items()}
    params = {}
    for name, shape, _, _ in layout:
        if name not in found:
            raise CheckpointError(f"{mpath}: tensor '{name}' is missing")
        if list(found[name].shape) != shape:
            raise CheckpointError(f"{mpath}: tensor '{name}' has shape {list(found[name].shape)}, expected {shape}")
        if not np.isfinite(found[name]).all():
            raise CheckpointError(f"{mpath}: tensor '{name}' holds a NaN or infinity")
        params[name] = found[name]
    opt = None
    opath = os.path.join(src, OPTIMIZER_FILE)
    t = read_safetensors(opath)[0] if os.path.exists(opath) else {}
    lossy = [n for n in params if dtypes.get(n, 'F32') != 'F32']
    if 'master_weights' in t:
        # hlm pretrain --save-dtype f16: the float32 weights, of which model.safetensors holds the rounding.
        master = t['master_weights']
        if list(master.shape) != [total]:
            raise CheckpointError(
                f"{opath}: tensor 'master_weights' has shape {list(master.shape)}, expected [{total}]"
            )
        for name, shape, offset, _ in layout:
            w = master[offset : offset + int(np.prod(shape))].reshape(shape)
            rounded = w.astype(np.float16).astype(np.float32) if dtypes[name] == 'F16' else w
            if not np.array_equal(rounded, params[name]):
                raise CheckpointError(f"{mpath}: tensor '{name}' is not the rounding of {opath}'s master_weights")
            params[name] = w
    elif optimizer and lossy:
        raise CheckpointError(
            f"{mpath} holds {dtypes[lossy[0]]} weights (tensor '{lossy[0]}'), and {opath} has no float32 "
            'master_weights to resume from bit for bit (hlm keeps them with --save-dtype f16): start a new run from '
            'it with --init instead'
        )
    if optimizer and ('exp_avg' in t or 'exp_avg_sq' in t or 'step' in t):
        for k in ('exp_avg', 'exp_avg_sq', 'step'):
            if k not in t:
                raise CheckpointError(f"{opath}: tensor '{k}' is missing")
        for k in ('exp_avg', 'exp_avg_sq'):
            if list(t[k].shape) != [total]:
                raise CheckpointError(
                    f"{opath}: tensor '{k}' has shape {list(t[k].shape)}, expected [{total}] (the flat parameter "
                    f'layout of this model; was the model configuration changed?)'
                )
        if t['step'].shape != ():
            raise CheckpointError(f"{opath}: tensor 'step' has shape {list(t['step'].shape)}, expected [] (a scalar)")
        opt = {'step': int(t['step']), 'm': t['exp_avg'], 'v': t['exp_avg_sq']}
    tpath = os.path.join(src, TOKENIZER_FILE)
    tokenizer = open(tpath, encoding='utf-8').read() if os.path.exists(tpath) else None
    extra = {}
    for name in TOKENIZER_EXTRA_FILES:
        if os.path.exists(os.path.join(src, name)):
            extra[name] = open(os.path.join(src, name), encoding='utf-8').read()
    return {
        'dir': src,
        'config': cfg,
        'hlm': hlm,
        'params': params,
        'optimizer': opt,
        'tokenizer_json': tokenizer,
        'tokenizer_files': extra,
    }


def flatten(cfg, tensors):
    """The layout's tensors as hlm's flat buffer (padding zero)."""
    layout, total = param_layout(cfg)
    flat = np.zeros(total, dtype=np.float32)
    for name, shape, offset, _ in layout:
        flat[offset : offset + int(np.prod(shape))] = np.asarray(tensors[name], dtype=np.float32).reshape(-1)
    return flat


def _write_synced(path, data):
    with open(path, 'wb') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())


def _sync_dir(path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def save_checkpoint(path, cfg, hlm, params, optimizer=None, tokenizer_json=None, run_json=None, tokenizer_files=None):
    """saveCheckpoint: write everything in a temporary sibling, then swap it in; refuses to replace a non-checkpoint."""
    target = os.path.abspath(path)
    parent = os.path.dirname(target)
    os.makedirs(parent, exist_ok=True)
    old = _old_sibling(target)
    if not os.path.exists(target) and os.path.exists(old):
        os.rename(old, target)
    allowed = set(STANDARD_FILES + (RUN_FILE,))
    if os.path.exists(target):
        if not os.path.isdir(target):
            raise CheckpointError(f'cannot write checkpoint {target}: it exists and is not a directory')
        for e in os.scandir(target):
            if not e.is_file() or e.name not in allowed:
                raise CheckpointError(
                    f"refusing to replace {target}: it holds '{e.name}', which is not a file of this checkpoint; "
                    f'choose another directory or remove it'
                )
    layout, total = param_layout(cfg)
    tmp = tempfile.mkdtemp(prefix=f'.{os.path.basename(target)}.tmp-', dir=parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes it 0700; a checkpoint gets the usual permissions, as in hlm
    try:
        _write_synced(os.path.join(tmp, CONFIG_FILE), (json.dumps(hf_config(cfg, hlm), indent=2) + '\n').encode())
        model = {name: ('F32', shape, params[name]) for name, shape, _, _ in layout}
        _write_synced(os.path.join(tmp, MODEL_FILE), safetensors_bytes(model, {'format': 'pt'}))
        if optimizer is not None:
            tensors = {
                'exp_avg': ('F32', [total], optimizer['m']),
                'exp_avg_sq': ('F32', [total], optimizer['v']),
                'step': ('I64', [], np.array(optimizer['step'], dtype=np.int64)),
            }
            meta = {'format': 'hlm', 'layout': 'flat', 'param_align': str(PARAM_ALIGN), 'param_total': str(total)}
            _write_synced(os.path.join(tmp, OPTIMIZER_FILE), safetensors_bytes(tensors, meta))
        if tokenizer_json is not None:
            _write_synced(os.path.join(tmp, TOKENIZER_FILE), tokenizer_json.encode('utf-8'))
            for name, text in (tokenizer_files or {}).items():
                _write_synced(os.path.join(tmp, name), text.encode('utf-8'))
        if run_json is not None:
            _write_synced(os.path.join(tmp, RUN_FILE), (json.dumps(run_json, indent=2) + '\n').encode())
        _sync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replacing = os.path.exists(target)
    if replacing:
        shutil.rmtree(old, ignore_errors=True)
        os.rename(target, old)
    os.rename(tmp, target)
    _sync_dir(parent)
    if replacing:
        shutil.rmtree(old, ignore_errors=True)
