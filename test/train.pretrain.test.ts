// Training as a whole: the single-step contract (one plain SGD step from --init, checked
// against the float64 reference), bit-for-bit resume, metrics, and clear refusals.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { openTestGpu } from './helpers/gpu.js';
import { expectClose } from './helpers/check.js';
import type { Gpu } from '../src/gpu/device.js';
import { pretrain, readMetrics, type PretrainOptions, trainingDefaults } from '../src/train/pretrain.js';
import { loadCheckpoint, saveCheckpoint } from '../src/model/checkpoint.js';
import { BatchSource } from '../src/data/batches.js';
import { defaultCorpusPath } from '../src/data/corpus.js';
import { prepareData } from '../src/data/shards.js';
import { loadTokenizer } from '../src/data/tokenizer.js';
import { gpt2LossAndGrads } from '../src/reference/gpt2.js';
import { preset } from '../src/model/config.js';
import { initParams, paramLayout } from '../src/model/params.js';
import { lrAt } from '../src/train/schedule.js';

let gpu: Gpu;
let dir: string;
let corpus: string;
beforeAll(async () => {
  gpu = await openTestGpu();
  dir = mkdtempSync(join(tmpdir(), 'hlm-pretrain-'));
  process.env.HLM_CACHE_DIR = join(dir, 'cache');
  corpus = join(dir, 'corpus.txt');
  const text = readFileSync(defaultCorpusPath(), 'utf8').slice(0, 60_000);
  writeFileSync(corpus, text.replace(/<[^>]+>/g, ''));
});
afterAll(() => {
  gpu?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

// A very small model with GPT-2's vocabulary, so a step takes a fraction of a second here.
const SMALL = ['n_layer=1', 'n_embd=16', 'n_head=2', 'n_positions=32'];

function opts(out: string, o: Partial<PretrainOptions> = {}): PretrainOptions {
  return {
    arch: 'decoder',
    objective: 'ce',
    preset: 'tiny',
    set: SMALL,
    data: [corpus],
    out,
    resume: false,
    steps: 4,
    batchSize: 2,
    seqLen: 16,
    lr: 1e-2,
    optimizer: 'adamw',
    weightDecay: 0.1,
    warmup: 2,
    schedule: 'cosine',
    gradClip: 1,
    order: 'shuffled',
    seed: 3,
    evalEvery: 0,
    evalBatches: 2,
    saveEvery: 0,
    logEvery: 3,
    ...o,
  };
}

test('the single-step contract: the saved weights are one plain SGD step from --init', async () => {
  const tok = await loadTokenizer('gpt2');
  const config = { ...preset('tiny'), n_layer: 1, n_embd: 16, n_head: 2, n_positions: 32, eos_token_id: tok.eotId };
  const layout = paramLayout(config);
  const init = initParams(config, 7);
  const initDir = join(dir, 'init');
  await saveCheckpoint(initDir, { config, params: init });
  const out = join(dir, 'one-step');
  const lr = 0.5;
  await pretrain(
    gpu,
    opts(out, {
      init: initDir,
      optimizer: 'sgd',
      order: 'sequential',
      gradClip: 0,
      weightDecay: 0,
      schedule: 'constant',
      warmup: 0,
      steps: 1,
      lr,
    }),
  );
  const after = (await loadCheckpoint(join(out, 'checkpoint'))).params;

  // The batch the contract names: row r of batch 0 is tokens [r·T, r·T + T + 1).
  const data = await prepareData([corpus], tok);
  const src = BatchSource.open(data.shards, { batchSize: 2, seqLen: 16, order: 'sequential', seed: 0 });
  const batch = src.batchAt(0);
  src.close();
  const named: Record<string, Float64Array> = {};
  for (const t of layout.tensors) named[t.name] = Float64Array.from(init.subarray(t.offset, t.offset + t.size));
  const ref = gpt2LossAndGrads(named, config, batch.inputs, batch.targets, 2, 16, 'ce');
  const errs: string[] = [];
  for (const t of layout.tensors) {
    const want = named[t.name].map((p, i) => p - lr * ref.grads[t.name][i]);
    // Compare the update itself: rounding of p is the same on both sides.
    const got = after.subarray(t.offset, t.offset + t.size).map((p, i) => p - init[t.offset + i]);
    try {
      expectClose(
        got,
        want.map((p, i) => p - named[t.name][i]),
        2e-4,
        `update of ${t.name}`,
      );
    } catch (e) {
      errs.push((e as Error).message);
    }
  }
  if (errs.length) throw new Error(errs.join('\n') + ` logged loss ${readMetrics(out)[0].loss} reference ${ref.loss}`);
  const metrics = readMetrics(out);
  expectClose([metrics[0].loss], [ref.loss], 1e-5, 'logged loss');
});

test('N steps, then --resume for N more, gives bit for bit the weights of 2N steps', async () => {
  const whole = join(dir, 'whole');
  const split = join(dir, 'split');
  await pretrain(gpu, opts(whole, { steps: 6 }));
  await pretrain(gpu, opts(split, { steps: 3, scheduleSteps: 6 }));
  await pretrain(gpu, opts(split, { steps: 6, resume: true }));
  const a = await loadCheckpoint(join(whole, 'checkpoint'));
  const b = await loadCheckpoint(join(split, 'checkpoint'));
  expect(Buffer.from(b.params.buffer).equals(Buffer.from(a.params.buffer))).toBe(true);
  expect(Buffer.from(b.optimizer!.m.buffer).equals(Buffer.from(a.optimizer!.m.buffer))).toBe(true);
  expect(b.hlm.step).toBe(6);
  const steps = readMetrics(split)
    .filter((m) => 'loss' in m)
    .map((m) => m.step);
  expect(steps).toEqual([1, 2, 3, 4, 5, 6]);
  const la = readMetrics(whole)
    .filter((m) => 'loss' in m)
    .map((m) => m.loss);
  const lb = readMetrics(split)
    .filter((m) => 'loss' in m)
    .map((m) => m.loss);
  expect(lb).toEqual(la);
});

test('--max-time: stops after the step in which the time ran out, saves, and a resume spends the rest', async () => {
  const out = join(dir, 'timed');
  const budget = 2;
  const timed = { steps: 1_000_000, warmup: 0, logEvery: 1 };
  const r = await pretrain(gpu, opts(out, { ...timed, maxTime: budget }));
  expect(r.stoppedBy).toBe('time');
  if (!(r.trainSeconds >= budget)) throw new Error(`trained ${r.trainSeconds} s of ${budget}`);
  const ck = await loadCheckpoint(join(out, 'checkpoint'));
  expect(ck.hlm.step).toBe(r.steps);
  expect(Number(ck.hlm.train_seconds)).toBeCloseTo(r.trainSeconds, 6);
  expect(r.tokens).toBe(r.steps * 2 * 16);
  const rows = readMetrics(out).filter((m) => 'loss' in m);
  expect(rows.map((m) => m.step)).toEqual(Array.from({ length: r.steps }, (_, i) => i + 1));
  // Each row's elapsed_s is read just after its step: the last step ended past the budget, the one before
  // within it (give or take the read-back that the clock also counts).
  if (!(rows.at(-1)!.elapsed_s >= budget - 1e-3)) throw new Error(`last step at ${rows.at(-1)!.elapsed_s} s`);
  if (rows.length > 1 && !(rows.at(-2)!.elapsed_s < budget + 0.5))
    throw new Error(`the step before the last ended at ${rows.at(-2)!.elapsed_s} s of ${budget}`);
  // The decay follows the time spent, not the 10⁶ steps: each step's rate is the cosine at the time the step
  // before it ended (a step-based schedule would stay at the peak).
  const spec = { lr: 1e-2, warmup: 0, steps: 1_000_000, schedule: 'cosine' as const };
  for (let k = 0; k < rows.length; k++) {
    const want = lrAt(k + 1, spec, k ? rows[k - 1].elapsed_s / budget : 0);
    if (!(Math.abs(rows[k].lr - want) < 2e-3)) throw new Error(`step ${k + 1}: lr ${rows[k].lr}, expected ${want}`);
  }

  // Resumed with a larger budget, the run continues from its checkpoint and its clock.
  const longer = r.trainSeconds + 1;
  const more = await pretrain(gpu, opts(out, { ...timed, maxTime: longer, resume: true }));
  expect(more.stoppedBy).toBe('time');
  expect(more.startStep).toBe(r.steps);
  if (!(more.steps > r.steps && more.trainSeconds >= longer)) throw new Error(JSON.stringify(more));
  expect(more.tokens).toBe(more.steps * 2 * 16);
  await expect(pretrain(gpu, opts(out, { ...timed, maxTime: budget, resume: true }))).rejects.toThrow(
    /already past --max-time 2$/,
  );
});

test('the encoder trains on masked tokens and its loss falls; metrics have every step', async () => {
  const out = join(dir, 'encoder');
  const r = await pretrain(
    gpu,
    opts(out, { arch: 'encoder', steps: 12, lr: 3e-2, batchSize: 4, evalEvery: 6, evalData: corpus }),
  );
  const m = readMetrics(out).filter((x) => 'loss' in x);
  expect(m.map((x) => x.step)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  for (const x of m)
    for (const k of ['loss', 'lr', 'tokens', 'elapsed_s'])
      if (!Number.isFinite(x[k])) throw new Error(`${k} missing at step ${x.step}`);
  const first = m.slice(0, 3).reduce((s, x) => s + x.loss, 0) / 3;
  const last = m.slice(-3).reduce((s, x) => s + x.loss, 0) / 3;
  if (!(last < first - 0.5)) throw new Error(`encoder loss did not fall: ${first} -> ${last}`);
  expect(r.valLoss).not.toBeNull();
  const ck = await loadCheckpoint(join(out, 'checkpoint'));
  expect(ck.config.causal).toBe(false);
  expect(ck.config.mask_token_id).toBe(50257);
  expect(ck.config.vocab_size).toBe(50258);
});

test.each(['decoder', 'encoder'] as const)(
  'the %s trains with the CWT objective: its loss falls, and the config says cwt',
  async (arch) => {
    // A small, repetitive text the model can learn within a few steps: CWT's loss starts at
    // log K and only falls once hidden states and target embeddings line up, which natural text
    // takes hundreds of steps to show.
    const rhyme = join(dir, 'rhyme.txt');
    writeFileSync(
      rhyme,
      'Mary had a little lamb, its fleece was white as snow; and everywhere that Mary went, the lamb was ' +
        'sure to go. '.repeat(200),
    );
    const out = join(dir, `cwt-${arch}`);
    // The encoder sees only the masked 15% as targets, so it needs a larger batch and more steps.
    const r =
      arch === 'decoder'
        ? await pretrain(
            gpu,
            opts(out, {
              arch,
              objective: 'cwt',
              data: [rhyme],
              steps: 20,
              lr: 3e-2,
              batchSize: 4,
              evalEvery: 20,
              evalData: rhyme,
            }),
          )
        : await pretrain(
            gpu,
            opts(out, {
              arch,
              objective: 'cwt',
              data: [rhyme],
              set: ['n_layer=2', 'n_embd=32', 'n_head=2', 'n_positions=32'],
              steps: 80,
              lr: 1e-2,
              warmup: 5,
              batchSize: 32,
              logEvery: 10,
              evalEvery: 80,
              evalData: rhyme,
            }),
          );
    const m = readMetrics(out).filter((x) => 'loss' in x);
    const w = arch === 'decoder' ? 3 : 10;
    const first = m.slice(0, w).reduce((s, x) => s + x.loss, 0) / w;
    const last = m.slice(-w).reduce((s, x) => s + x.loss, 0) / w;
    if (!(last < first - 0.3)) throw new Error(`CWT ${arch} loss did not fall: ${first} -> ${last}`);
    if (!(r.valLoss! > 0)) throw new Error(`validation loss ${r.valLoss}`);
    // A CWT decoder also reports the tied-embedding cross-entropy, on the CE scale.
    if (arch === 'decoder' && !(r.valCe! > 0)) throw new Error(`tied CE ${r.valCe}`);
    const ck = await loadCheckpoint(join(out, 'checkpoint'));
    expect(ck.hlm.objective ?? ck.config.objective).toBe('cwt');
  },
);

test(
  'refusals: an existing checkpoint without --resume, missing data, a sequence past n_positions, resume without ' +
    'a checkpoint',
  async () => {
    const out = join(dir, 'whole');
    await expect(pretrain(gpu, opts(out))).rejects.toThrow(/already holds a run \(a checkpoint at step 6, /);
    await expect(pretrain(gpu, opts(join(dir, 'x1'), { data: [join(dir, 'nope.txt')] }))).rejects.toThrow(/nope\.txt/);
    await expect(pretrain(gpu, opts(join(dir, 'x2'), { seqLen: 33 }))).rejects.toThrow(
      /exceeds the model's n_positions 32/,
    );
    await expect(pretrain(gpu, opts(join(dir, 'x3'), { resume: true }))).rejects.toThrow(/no checkpoint/);
    expect(existsSync(join(dir, 'x2', 'checkpoint'))).toBe(false);
  },
);

test('a diverging loss stops the run at the step it happened, keeping the last good checkpoint', async () => {
  const out = join(dir, 'diverge');
  await pretrain(gpu, opts(out, { steps: 2 }));
  await expect(
    pretrain(
      gpu,
      opts(out, {
        steps: 8,
        resume: true,
        optimizer: 'sgd',
        lr: 1e30,
        gradClip: 0,
        warmup: 0,
        schedule: 'constant',
        logEvery: 1,
      }),
    ),
  ).rejects.toThrow(
    /the loss (became|would become) (NaN|Infinity) at step \d+; stopped \(.*\)\. The last finite checkpoint is step 2: /,
  );
  expect((await loadCheckpoint(join(out, 'checkpoint'))).hlm.step).toBe(2);
});

test('compare-objectives: CE and CWT on one budget, with throughput, peak memory and validation losses', async () => {
  const { compareObjectives, comparisonTable } = await import('../src/train/compare.js');
  const c = await compareObjectives(gpu, opts(join(dir, 'compare'), { steps: 4, evalEvery: 4, evalData: corpus }));
  expect(c.rows.map((r) => r.objective)).toEqual(['ce', 'cwt']);
  for (const r of c.rows) {
    for (const k of ['tokensPerSecond', 'peakGpuBytes', 'finalTrainLoss', 'valLoss', 'valCe'] as const)
      if (!((r[k] as number) > 0)) throw new Error(`${r.objective} ${k} = ${r[k]}`);
  }
  // No V-sized logits: the headless model needs less memory.
  if (!(c.memoryRatio < 1)) throw new Error(`cwt/ce peak memory ${c.memoryRatio}`);
  expect(comparisonTable(c)).toMatch(/\| ce \|[\s\S]*\| cwt \|/);
});

test('multilingual: a BPE tokenizer trained on UDHR, then a tiny CWT model trained with it', async () => {
  const { trainBpeTokenizer, saveTokenizer } = await import('../src/data/tokenizer.js').then(async (t) => ({
    ...(await import('../src/data/hf-tokenizer.js')),
    saveTokenizer: t.saveTokenizer,
  }));
  const udhr = join(repoRootForTests(), '..', 'shared', 'data', 'multilingual', 'udhr');
  const files = ['eng.txt', 'fra.txt', 'deu.txt', 'rus.txt', 'arb.txt', 'hin.txt', 'cmn_hans.txt']
    .map((f) => join(udhr, f))
    .filter((f) => existsSync(f));
  expect(files.length).toBeGreaterThanOrEqual(5);
  const tok = await trainBpeTokenizer(files, { vocabSize: 2000 });
  const tdir = join(dir, 'ml-tok');
  mkdirSync(tdir, { recursive: true });
  saveTokenizer(tok, tdir);
  const out = join(dir, 'ml-cwt');
  await pretrain(
    gpu,
    // 40 steps: at 4×16 targets the CWT loss starts at ln 64 and needs more than 15 steps to leave it
    opts(out, { objective: 'cwt', tokenizer: tdir, data: files, steps: 40, lr: 1e-2, batchSize: 4, evalEvery: 0 }),
  );
  const ck = await loadCheckpoint(join(out, 'checkpoint'));
  expect(ck.config.vocab_size).toBe(tok.vocabSize);
  expect(ck.tokenizerJson).toBeDefined();
  const m = readMetrics(out).filter((x) => 'loss' in x);
  if (!(m.at(-1)!.loss < m[0].loss)) throw new Error(`multilingual CWT loss ${m[0].loss} -> ${m.at(-1)!.loss}`);
});

function repoRootForTests(): string {
  let d = new URL('.', import.meta.url).pathname;
  while (!existsSync(join(d, 'package.json'))) d = join(d, '..');
  return d;
}

test(
  'head fine-tuning: --init <cwt checkpoint> --objective ce --untied-head starts lm_head ' +
    'from the input embeddings',
  async () => {
    const cwt = join(dir, 'ft-cwt');
    await pretrain(gpu, opts(cwt, { objective: 'cwt', steps: 3 }));
    const src = await loadCheckpoint(join(cwt, 'checkpoint'));
    const out = join(dir, 'ft-ce');
    // lr 0: the saved weights are the initial ones, so the new head must equal wte exactly.
    await pretrain(
      gpu,
      opts(out, {
        init: join(cwt, 'checkpoint'),
        objective: 'ce',
        untiedHead: true,
        steps: 1,
        lr: 0,
        optimizer: 'sgd',
        warmup: 0,
        schedule: 'constant',
      }),
    );
    const ft = await loadCheckpoint(join(out, 'checkpoint'));
    expect(ft.config.tie_word_embeddings).toBe(false);
    expect(ft.config.objective).toBe('ce');
    const wte = src.layout.byName.get('transformer.wte.weight')!;
    const head = ft.layout.byName.get('lm_head.weight')!;
    const a = src.params.subarray(wte.offset, wte.offset + wte.size);
    const b = ft.params.subarray(head.offset, head.offset + head.size);
    expect(Buffer.from(b.slice().buffer).equals(Buffer.from(a.slice().buffer))).toBe(true);
    // And it trains: a few steps with a real learning rate lower the CE loss.
    const out2 = join(dir, 'ft-ce2');
    await pretrain(
      gpu,
      opts(out2, {
        init: join(cwt, 'checkpoint'),
        objective: 'ce',
        untiedHead: true,
        steps: 15,
        lr: 3e-2,
        batchSize: 4,
      }),
    );
    const m = readMetrics(out2).filter((x) => 'loss' in x);
    const first = (m[0].loss + m[1].loss + m[2].loss) / 3;
    const last = (m[12].loss + m[13].loss + m[14].loss) / 3;
    if (!(last < first - 0.3)) throw new Error(`head fine-tuning loss ${first} -> ${last}`);
    await expect(pretrain(gpu, opts(join(dir, 'ft-bad'), { untiedHead: true }))).rejects.toThrow(
      /--untied-head goes with --init/,
    );
  },
);

test(
  'a JSON config file sets model and training keys; --set and explicit flags beat it; run.json repeats the run ' +
    'exactly',
  async () => {
    const cfg = join(dir, 'run-config.json');
    writeFileSync(
      cfg,
      JSON.stringify({
        n_layer: 1,
        n_embd: 8,
        n_head: 2,
        n_positions: 16,
        steps: 3,
        batch_size: 2,
        seq_len: 8,
        lr: 0.05,
        warmup: 0,
      }),
    );
    const base = opts(join(dir, 'cfg1'), { set: [], configFile: cfg, steps: 99, explicit: [] });
    await pretrain(gpu, base);
    const a = await loadCheckpoint(join(dir, 'cfg1', 'checkpoint'));
    expect(a.config.n_embd).toBe(8);
    expect(a.hlm.step).toBe(3); // the file's steps beat the (non-explicit) default
    const run = JSON.parse(readFileSync(join(dir, 'cfg1', 'checkpoint', 'run.json'), 'utf8'));
    expect(run).toMatchObject({ n_embd: 8, n_layer: 1, steps: 3, batch_size: 2, seq_len: 8, lr: 0.05 });
    // Repeating the run from its run.json gives the same weights, bit for bit.
    await pretrain(
      gpu,
      opts(join(dir, 'cfg2'), { set: [], configFile: join(dir, 'cfg1', 'checkpoint', 'run.json'), explicit: [] }),
    );
    const b = await loadCheckpoint(join(dir, 'cfg2', 'checkpoint'));
    expect(Buffer.from(b.params.buffer).equals(Buffer.from(a.params.buffer))).toBe(true);
    // An explicit flag beats the file, --set beats both.
    await pretrain(gpu, opts(join(dir, 'cfg3'), { set: ['steps=2'], configFile: cfg, steps: 1, explicit: ['steps'] }));
    expect((await loadCheckpoint(join(dir, 'cfg3', 'checkpoint'))).hlm.step).toBe(2);
    await pretrain(gpu, opts(join(dir, 'cfg4'), { set: [], configFile: cfg, steps: 1, explicit: ['steps'] }));
    expect((await loadCheckpoint(join(dir, 'cfg4', 'checkpoint'))).hlm.step).toBe(1);
    writeFileSync(cfg, JSON.stringify({ n_layers: 2 }));
    await expect(pretrain(gpu, opts(join(dir, 'cfg5'), { set: [], configFile: cfg }))).rejects.toThrow(
      /n_layers[\s\S]*n_layer/,
    );
  },
);

test('batch, sequence and learning rate default by model width, and run.json records what was used', async () => {
  expect(trainingDefaults(preset('tiny'))).toEqual({ batchSize: 16, seqLen: 128, lr: 6e-3 });
  expect(trainingDefaults({ ...preset('tiny'), causal: false })).toEqual({ batchSize: 128, seqLen: 64, lr: 6e-3 });
  expect(trainingDefaults({ ...preset('small'), causal: false }).batchSize).toBe(16);
  expect(trainingDefaults(preset('small'))).toEqual({ batchSize: 16, seqLen: 512, lr: 1e-3 });
  expect(trainingDefaults(preset('base'))).toEqual({ batchSize: 8, seqLen: 1024, lr: 6e-4 });
  expect(trainingDefaults({ ...preset('tiny'), n_positions: 32 }).seqLen).toBe(32);
  const out = join(dir, 'defaults');
  const r = await pretrain(
    gpu,
    opts(out, {
      steps: 1,
      set: ['n_layer=1', 'n_embd=8', 'n_head=2', 'n_positions=8'],
      batchSize: undefined,
      seqLen: undefined,
      lr: undefined,
    }),
  );
  expect([r.batchSize, r.seqLen, r.lr]).toEqual([16, 8, 6e-3]);
  const run = JSON.parse(readFileSync(join(out, 'checkpoint', 'run.json'), 'utf8'));
  expect(run).toMatchObject({ batch_size: 16, seq_len: 8, lr: 6e-3 });
});
