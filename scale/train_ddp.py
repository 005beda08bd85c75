#!/usr/bin/env python3
"""Continue an hlm pretraining run on several GPUs (or CPU processes) with PyTorch DistributedDataParallel.

Same GPT-2 as hlm (Hugging Face layout), the same CE or CWT loss, the same data order and masking, the same AdamW
and schedule; it reads an hlm checkpoint directory (--init, or <out>/checkpoint with --resume) and writes one back
in hlm's layout, so `hlm pretrain --resume`, `hlm eval-lambada` and `hlm finetune-glue` take it from there.
Flags are `hlm pretrain`'s; --batch-size is the global batch, split evenly over the ranks.

One step: every rank draws the global batch b exactly as hlm does (and masks it, for an encoder), keeps its own
contiguous B/W rows, and scales its summed loss by W/K (K: the global batch's targets), so that DDP's mean of the
ranks' gradients is the gradient of the loss averaged over all K targets. For CE that is hlm's loss on the whole
batch; for CWT the negatives of a target are the targets of its own rank's rows (its micro-batch), as with hlm's
gradient accumulation over micro-batches.

  torchrun --nproc-per-node 8 scale/train_ddp.py --resume --out runs/small --data shards/ --steps 20000
  torchrun --nnodes 2 --node-rank 0 --nproc-per-node 8 --rdzv-backend c10d --rdzv-endpoint host0:29500 \\
      scale/train_ddp.py --init runs/small/checkpoint --out runs/big --data shards/ --steps 20000
"""

import argparse
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, '..', 'bench'))
from hlm_checkpoint import flatten, load_checkpoint, param_layout, save_checkpoint, tokenizer_info  # noqa: E402
from hlm_data import BatchSource, DataError, lr_at, mask_tokens, prepare_data, training_defaults  # noqa: E402
from torch_gpt2 import Gpt2  # noqa: E402

UserError = DataError

# hlm pretrain flags this trainer does not take, and why.
UNSUPPORTED = {
    '--preset': 'the model comes from --init or --resume',
    '--tokenizer': "the checkpoint's tokenizer is used",
    '--config': 'give the settings as flags',
    '--set': 'give the settings as flags; the model comes from the checkpoint',
    '--untied-head': 'head fine-tuning runs in hlm',
    '--eval-every': 'no validation here: run hlm pretrain --resume or eval-lambada on the checkpoint',
    '--eval-data': 'no validation here',
    '--eval-batches': 'no validation here',
}


def nonneg(name):
    def parse(text):
        try:
            x = float(text)
        except ValueError:
            x = math.nan
        if not (math.isfinite(x) and x >= 0):
            raise argparse.ArgumentTypeError(f'--{name} must be a non-negative number, got {text}')
        return x

    return parse


def positive(name):
    def parse(text):
        if not text.isdigit() or int(text) < 1:
            raise argparse.ArgumentTypeError(f'--{name} must be a positive integer, got {text}')
        return int(text)

    return parse


def parse_args(argv):
    for a in argv:
        name = a.split('=', 1)[0]
        if name in UNSUPPORTED:
            raise UserError(f'{name} is not taken by scale/train_ddp.py: {UNSUPPORTED[name]}')
    p = argparse.ArgumentParser(
        prog='scale/train_ddp.py', description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument('--init', help='start from this checkpoint directory (weights only, step 0)')
    p.add_argument('--resume', action='store_true', help='continue <out>/checkpoint (weights, AdamW, data position)')
    p.add_argument('--out', default='runs/pretrain', help='run directory: metrics.jsonl and checkpoint/')
    p.add_argument('--data', nargs='+', action='extend', default=[], help='.bin token shards, directories of them')
    p.add_argument('--arch', choices=['decoder', 'encoder'], help="default: the checkpoint's; must match it")
    p.add_argument('--objective', choices=['ce', 'cwt'], help="default: the checkpoint's (with --resume it must match)")
    p.add_argument('--steps', type=positive('steps'), default=300, help='train up to this step')
    p.add_argument('--schedule-steps', type=positive('schedule-steps'), help='length of the LR schedule')
    p.add_argument('--batch-size', type=positive('batch-size'), help='the global batch (sequences a step)')
    p.add_argument('--seq-len', type=positive('seq-len'))
    p.add_argument('--lr', type=nonneg('lr'))
    p.add_argument('--optimizer', choices=['adamw', 'sgd'], default='adamw')
    p.add_argument('--weight-decay', type=nonneg('weight-decay'), default=0.1)
    p.add_argument('--warmup', type=int, default=20)
    p.add_argument('--schedule', choices=['cosine', 'linear', 'constant'], default='cosine')
    p.add_argument('--grad-clip', type=nonneg('grad-clip'), default=1.0, help='global gradient-norm clip (0 = off)')
    p.add_argument('--order', choices=['shuffled', 'sequential'], default='shuffled')
    p.add_argument('--seed', type=int, default=1)
    p.add_argument('--save-every', type=int, default=0, help='checkpoint every N steps (0 = at the end only)')
    p.add_argument('--log-every', type=positive('log-every'), default=10)
    p.add_argument('--cwt-temperature', type=nonneg('cwt-temperature'), default=1.0)
    p.add_argument('--device', choices=['auto', 'cpu', 'gpu'], default='auto', help='gpu: CUDA with NCCL')
    p.add_argument('--precision', choices=['f32', 'tf32', 'bf16'], default='f32', help='f32 matches hlm')
    p.add_argument('--json', action='store_true', help='print the result as JSON on stdout')
    a = p.parse_args(argv)
    if a.warmup < 0 or a.save_every < 0 or a.seed < 0:
        raise UserError('--warmup, --save-every and --seed must be non-negative')
    if a.cwt_temperature <= 0:
        raise UserError(f'--cwt-temperature must be positive, got {a.cwt_temperature}')
    if a.init and a.resume:
        raise UserError('--init starts a new run and --resume continues <out>/checkpoint: give one of them')
    if not a.init and not a.resume:
        raise UserError('scale/train_ddp.py continues an hlm run: give --init <checkpoint dir> or --resume')
    return a


class Objective(torch.nn.Module):
    """hlm's heads on the GPT-2 body: returns (the rank's loss sum times `scale`, the plain sum, detached)."""

    def __init__(self, gpt, objective, temperature):
        super().__init__()
        self.gpt, self.objective, self.inv_temperature = gpt, objective, 1.0 / temperature

    def forward(self, x, targets, scale):
        h = self.gpt(x)
        flat = targets.reshape(-1)
        keep = flat >= 0
        o = h.reshape(-1, h.shape[-1])[keep].float()
        t = flat[keep]
        wte = self.gpt.w('wte.weight')
        if self.objective == 'ce':
            total = F.cross_entropy(o @ wte.T, t, reduction='sum')
        else:
            # CWT: each target's hidden state against the embeddings of this micro-batch's targets, diagonal positive.
            scores = (o @ wte[t].T) * self.inv_temperature
            total = F.cross_entropy(scores, torch.arange(len(t), device=t.device), reduction='sum')
        return total * scale, total.detach()


class Dist:
    """The process group (or none, for a plain `python3 scale/train_ddp.py` run: one rank)."""

    def __init__(self, device):
        self.world = int(os.environ.get('WORLD_SIZE', '1'))
        self.rank = int(os.environ.get('RANK', '0'))
        local = int(os.environ.get('LOCAL_RANK', '0'))
        cuda = device == 'gpu' or (device == 'auto' and torch.cuda.is_available())
        if cuda and not torch.cuda.is_available():
            raise UserError('--device gpu: PyTorch finds no CUDA device')
        if cuda:
            torch.cuda.set_device(local)
        self.device = torch.device('cuda', local) if cuda else torch.device('cpu')
        self.on = 'WORLD_SIZE' in os.environ
        if self.on:
            dist.init_process_group('nccl' if cuda else 'gloo')

    def sum(self, x):
        t = torch.as_tensor(x, dtype=torch.float64, device=self.device).clone()
        if self.on:
            dist.all_reduce(t)
        return t

    def agree(self, what, values):
        """Refuse to train when the ranks see different data or checkpoints (e.g. another copy on one node)."""
        if not self.on:
            return
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        lo, hi = t.clone(), t.clone()
        dist.all_reduce(lo, op=dist.ReduceOp.MIN)
        dist.all_reduce(hi, op=dist.ReduceOp.MAX)
        if not torch.equal(lo, hi):
            raise UserError(
                f'the ranks disagree on {what}: from {lo.tolist()} to {hi.tolist()}; every node must see the same files'
            )

    def barrier(self):
        if self.on:
            dist.barrier()


def resolve_run(a):
    """The checkpoint to start from and the run's settings, as hlm pretrain resolves them."""
    ckdir = os.path.join(os.path.abspath(a.out), 'checkpoint')
    if not a.resume and os.path.exists(os.path.join(ckdir, 'config.json')):
        raise UserError(f'{ckdir} already holds a checkpoint: pass --resume to continue it, or choose another --out')
    if a.resume and not os.path.exists(os.path.join(ckdir, 'config.json')):
        raise UserError(f'--resume: no checkpoint in {ckdir}')
    ck = load_checkpoint(ckdir if a.resume else a.init, optimizer=a.resume)
    cfg = ck['config']
    arch = 'decoder' if cfg['causal'] else 'encoder'
    if a.arch and a.arch != arch:
        raise UserError(f'{ck["dir"]} holds an {arch}, not an {a.arch}')
    if a.resume and a.objective and a.objective != cfg['objective']:
        raise UserError(f'--resume: {ck["dir"]} was trained with --objective {cfg["objective"]}, not {a.objective}')
    cfg['objective'] = a.objective or cfg['objective']
    start = int(ck['hlm'].get('step', 0)) if a.resume else 0
    if a.resume and a.optimizer == 'adamw':
        if ck['optimizer'] is None:
            raise UserError(f'--resume: {ck["dir"]} has no optimizer.safetensors')
        if ck['optimizer']['step'] != start:
            raise UserError(
                f'--resume: {ck["dir"]}: optimizer.safetensors is at step {ck["optimizer"]["step"]}, config.json '
                f'at step {start}'
            )
    d = training_defaults(cfg['n_embd'], cfg['causal'], cfg['n_positions'])
    for k in ('batch_size', 'seq_len', 'lr'):
        if getattr(a, k) is None:
            setattr(a, k, d[k])
    if a.seq_len > cfg['n_positions']:
        raise UserError(f'--seq-len {a.seq_len} exceeds the model\'s n_positions {cfg["n_positions"]}')
    if start >= a.steps:
        raise UserError(f'--resume: the checkpoint is already at step {start}; ask for more --steps')
    return ckdir, ck, start


def run_files(a, cfg, out, world):
    """config.json's hlm.run and run.json (hlm's config-file format), as hlm pretrain writes them."""
    training = {
        'lr': a.lr,
        'steps': a.steps,
        'schedule_steps': a.schedule_steps,
        'batch_size': a.batch_size,
        'seq_len': a.seq_len,
        'optimizer': a.optimizer,
        'weight_decay': a.weight_decay,
        'warmup': a.warmup,
        'schedule': a.schedule,
        'grad_clip': a.grad_clip,
        'order': a.order,
        'seed': a.seed,
        'save_every': a.save_every,
        'log_every': a.log_every,
        'cwt_temperature': a.cwt_temperature,
    }
    model_keys = ['vocab_size', 'n_positions', 'n_embd', 'n_layer', 'n_head', 'layer_norm_epsilon', 'causal']
    model_keys += ['objective', 'tie_word_embeddings', 'mask_token_id', 'eos_token_id', 'num_labels']
    run_json = {**{k: cfg[k] for k in model_keys}, **{k: v for k, v in training.items() if v is not None}}
    camel = {k.split('_')[0] + ''.join(w.title() for w in k.split('_')[1:]): v for k, v in training.items()}
    run = {'trainer': 'scale/train_ddp.py', 'world_size': world, **camel, 'data': a.data, 'out': out}
    run.update({'arch': 'decoder' if cfg['causal'] else 'encoder', 'objective': cfg['objective'], 'init': a.init})
    run.update({'resume': a.resume, 'precision': a.precision})
    return {k: v for k, v in run.items() if v is not None}, run_json


def train(a, dd):
    ckdir, ck, start = resolve_run(a)
    cfg, out, world = ck['config'], os.path.abspath(a.out), dd.world
    if a.batch_size % world:
        raise UserError(f'--batch-size {a.batch_size} (the global batch) must be a multiple of the {world} ranks')
    tok = tokenizer_info(ck['tokenizer_json'], cfg)
    batches = BatchSource(prepare_data(a.data, tok['eot']), a.batch_size, a.seq_len, a.order, a.seed, tok['vocab_size'])
    if a.resume and ck['hlm'].get('data'):
        batches.restore(ck['hlm']['data'])
    dd.agree('the data and the start (tokens, step, position)', [batches.tokens, start, batches.position])

    gpt = Gpt2(cfg['vocab_size'], cfg['n_positions'], cfg['n_embd'], cfg['n_layer'], cfg['n_head'], cfg['causal'])
    layout, _ = param_layout(cfg)
    params = [gpt.w(name.removeprefix('transformer.')) for name, _, _, _ in layout]
    with torch.no_grad():
        for p, (name, _, _, _) in zip(params, layout):
            p.copy_(torch.from_numpy(np.array(ck['params'][name])))
    objective = Objective(gpt, cfg['objective'], a.cwt_temperature).to(dd.device)
    cuda = dd.device.type == 'cuda'
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = a.precision == 'tf32'
    if dd.on:
        objective = torch.nn.parallel.DistributedDataParallel(objective, device_ids=[dd.device.index] if cuda else None)
    decay = [p for p, (_, _, _, dec) in zip(params, layout) if dec]
    rest = [p for p, (_, _, _, dec) in zip(params, layout) if not dec]
    groups = [{'params': decay, 'weight_decay': a.weight_decay}, {'params': rest, 'weight_decay': 0.0}]
    if a.optimizer == 'adamw':
        opt = torch.optim.AdamW(groups, lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
        if ck['optimizer'] is not None:
            m, v = ck['optimizer']['m'], ck['optimizer']['v']
            for p, (_, shape, offset, _) in zip(params, layout):
                n = int(np.prod(shape))
                opt.state[p] = {
                    'step': torch.tensor(float(start)),
                    'exp_avg': torch.from_numpy(np.array(m[offset : offset + n])).view(shape).to(dd.device),
                    'exp_avg_sq': torch.from_numpy(np.array(v[offset : offset + n])).view(shape).to(dd.device),
                }
    else:
        opt = torch.optim.SGD(groups, lr=a.lr)

    rows = a.batch_size // world
    mine = slice(dd.rank * rows, (dd.rank + 1) * rows)
    metrics = os.path.join(out, 'metrics.jsonl')
    tokens_per_step = a.batch_size * a.seq_len
    run, run_json = run_files(a, cfg, out, world)
    tokenizer_meta = ck['hlm'].get('tokenizer') or (
        {'name': 'gpt2', 'fingerprint': 'gpt2-r50k_base', 'vocab_size': 50257} if ck['tokenizer_json'] is None else None
    )
    last_saved = start

    def host(tensor_of):
        """{layout name: a float32 numpy copy} of one tensor per parameter (the parameter itself, or its state)."""
        return {name: tensor_of(p).detach().float().cpu().numpy() for p, (name, *_) in zip(params, layout)}

    def save(step):
        nonlocal last_saved
        if dd.rank == 0:
            moments = None
            if a.optimizer == 'adamw':
                m, v = (flatten(cfg, host(lambda p: opt.state[p][k])) for k in ('exp_avg', 'exp_avg_sq'))
                moments = {'step': step, 'm': m, 'v': v}
            hlm = {'step': step, 'data': batches.state(), **({'tokenizer': tokenizer_meta} if tokenizer_meta else {})}
            hlm['run'] = run
            save_checkpoint(
                ckdir, cfg, hlm, host(lambda p: p), moments, ck['tokenizer_json'], run_json, ck['tokenizer_files']
            )
            log(f'checkpoint at step {step}: {ckdir}')
        last_saved = step
        dd.barrier()

    def log(msg):
        if dd.rank == 0 and not a.json:
            print(msg, file=sys.stderr, flush=True)

    if dd.rank == 0:
        os.makedirs(out, exist_ok=True)
    autocast = torch.autocast(dd.device.type, dtype=torch.bfloat16, enabled=a.precision == 'bf16')
    t0, pending, loss = time.perf_counter(), [], math.nan
    for step in range(start + 1, a.steps + 1):
        inputs, targets = batches.batch_at(batches.position)
        batches.position += 1
        if not cfg['causal']:
            inputs, targets = mask_tokens(
                inputs, a.seed, step, cfg['mask_token_id'], tok['vocab_size'], tok['special_ids']
            )
            inputs, targets = inputs.reshape(a.batch_size, a.seq_len), targets.reshape(a.batch_size, a.seq_len)
        K = int((targets >= 0).sum())
        if K == 0:
            raise UserError(f'step {step}: the batch has no target to predict')
        lr = lr_at(step, a.lr, a.warmup, a.schedule_steps or a.steps, a.schedule)
        for g in opt.param_groups:
            g['lr'] = lr
        opt.zero_grad(set_to_none=True)
        x = torch.from_numpy(np.ascontiguousarray(inputs[mine])).to(dd.device)
        y = torch.from_numpy(np.ascontiguousarray(targets[mine])).to(dd.device)
        with autocast:
            scaled, total = objective(x, y, world / K)
        scaled.backward()
        # The global norm summed in float64: torch's float32 norm (clip_grad_norm_) drifts by 1e-5 to 1e-4 on a
        # large tensor, which would change the clipping scale; hlm's reduction is a tree, accurate to float32.
        norm = math.sqrt(sum(float(torch.linalg.vector_norm(p.grad, dtype=torch.float64)) ** 2 for p in params))
        if a.grad_clip > 0 and a.grad_clip / (norm + 1e-6) < 1:
            for p in params:
                p.grad.mul_(a.grad_clip / (norm + 1e-6))
        opt.step()
        loss = float(dd.sum(total)) / K
        pending.append({'step': step, 'loss': loss, 'lr': lr, 'grad_norm': norm, 'tokens': step * tokens_per_step})
        last = step == a.steps
        saving = (a.save_every > 0 and step % a.save_every == 0) or last
        if not math.isfinite(loss) or len(pending) == a.log_every or saving:
            elapsed = time.perf_counter() - t0
            good = [m for m in pending if math.isfinite(m['loss'])]
            if dd.rank == 0:
                with open(metrics, 'a') as f:
                    f.writelines(
                        json.dumps({**m, 'elapsed_s': round(elapsed, 3)}, separators=(',', ':')) + '\n' for m in good
                    )
            pending = []
            if not math.isfinite(loss):
                raise UserError(
                    f'the loss became {loss} at step {step}; stopped. The last good checkpoint (step {last_saved}) is '
                    f'kept in {ckdir}'
                )
            done = step - start
            log(f'step {step}/{a.steps}  loss {loss:.4f}  lr {lr:.3g}  {done * tokens_per_step / elapsed:.0f} tok/s')
        if saving:
            save(step)
    elapsed = time.perf_counter() - t0
    return {
        'out': out,
        'checkpoint': ckdir,
        'steps': a.steps,
        'batchSize': a.batch_size,
        'seqLen': a.seq_len,
        'lr': a.lr,
        'tokens': a.steps * tokens_per_step,
        'finalLoss': loss,
        'tokensPerSecond': (a.steps - start) * tokens_per_step / elapsed,
        'elapsedSeconds': elapsed,
        'worldSize': world,
        'device': str(dd.device),
        'parameters': sum(p.numel() for p in params),
    }


def main(argv):
    rank = int(os.environ.get('RANK', '0'))
    dd = None
    try:
        a = parse_args(argv)
        dd = Dist(a.device)
        result = train(a, dd)
    except UserError as e:
        print(f'hlm: {e}' if rank == 0 else f'hlm: (rank {rank}) {e}', file=sys.stderr, flush=True)
        return 1
    finally:
        if dd is not None and dd.on and dist.is_initialized():
            dist.destroy_process_group()
    if rank == 0:
        if a.json:
            print(json.dumps(result))
        else:
            print(
                f'trained to step {result["steps"]} ({result["worldSize"]} ranks on {result["device"]}) in '
                f'{result["elapsedSeconds"]:.1f} s, {result["tokensPerSecond"]:.0f} tokens/s\n'
                f'final training loss {result["finalLoss"]:.4f}\ncheckpoint: {result["checkpoint"]}'
            )
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
