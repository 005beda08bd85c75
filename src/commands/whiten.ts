import { Flags } from '@oclif/core';
import { HlmCommand, deviceFlag } from '../cli/base.js';
import { floatFlag } from '../cli/flags.js';
import { HlmError } from '../errors.js';
import { checkOutputFile } from '../util/output-check.js';
import { log } from '../log.js';
import {
  EMBEDDING_FORMATS,
  readEmbeddings,
  readFrequencies,
  writeEmbeddings,
  type EmbeddingFormat,
} from '../whiten/formats.js';
import {
  countCorpusTokens,
  countCorpusWords,
  countShardTokens,
  isCheckpointDir,
  looksLikeShards,
  readCheckpointEmbeddings,
} from '../whiten/inputs.js';
import { SIF_A, evaluateSts, findStsDatasets, type StsScore } from '../whiten/sts.js';
import { WHITEN_METHODS, align, whiten, type SymmetryReport, type WhitenMethod } from '../whiten/whiten.js';

export interface WhitenCommandResult {
  method: WhitenMethod;
  device: string;
  input: { path: string; format: EmbeddingFormat | 'checkpoint'; words: number; dim: number };
  frequencies: { path: string; source: 'file' | 'shards' | 'corpus'; words: number; tokenizer?: string };
  kept: number;
  dropped: { noFrequency: number; noVector: number };
  out?: string;
  epsilon?: number;
  abttK?: number;
  symmetry?: { input: SymmetryReport; output: SymmetryReport };
  sts?: { input: StsScore[]; output: StsScore[]; sif?: StsScore[] };
  timings: { readMs: number; fitMs: number; applyMs: number; reportMs?: number; writeMs?: number };
}

function fmtSym(s: SymmetryReport): string {
  return (
    `Sym1 p ${s.p.sym1.toFixed(4)} uniform ${s.uniform.sym1.toFixed(4)} · Sym2 p ${s.p.sym2.toFixed(4)} ` +
    `uniform ${s.uniform.sym2.toFixed(4)}`
  );
}

export default class Whiten extends HlmCommand {
  static override summary =
    'Whiten word embeddings with frequency-weighted (Zipfian) or uniform statistics, or a baseline.';
  static override description =
    'Keeps the words present in both the embeddings and the frequency list, p(w) = count / total over them. ' +
    'zipfian: z = (x − μ_p)·V Λ^(−1/2) from the p-weighted covariance, so that Σ p z zᵀ = I (Yokoi et al., 2024); ' +
    'uniform: the same with p uniform (PCA whitening); center: subtract the mean; abtt: also remove the top k ' +
    'principal components. ' +
    'Embeddings: word2vec text (header "V d"; fastText .vec), GloVe text (no header), word2vec binary (.bin), or ' +
    '.npy (float32, C order) with the words one per line in X.vocab (or --vocab), each plain or gzip (.gz), of any ' +
    'size: the file is streamed, only rows with a frequency are kept, and --max-vocab N stops after N rows; ' +
    'or an hlm checkpoint directory (config.json + model.safetensors): its token embeddings transformer.wte.weight, ' +
    'one row per token id, the words being the ids as decimal strings ("0", "1", ...), written as word2vec text ' +
    'unless --format; ' +
    'the output keeps the input format unless --format (npy output also writes <out without .npy>.vocab). ' +
    'Frequencies: a "word count" file, llm.c token shards (a .bin file or a directory of them; token ids counted, ' +
    'checkpoint input only), or --count-from <corpus> (plain or gzip; words counted after lowercasing and removing ' +
    "punctuation, as for --eval-sts; for a checkpoint, token ids counted with its tokenizer.json, or GPT-2's for " +
    'its vocabulary sizes). ' +
    'Moments and the transform run on the GPU, the d×d eigendecomposition in float64.';
  static override examples = [
    '<%= config.bin %> whiten --embeddings vec.txt --frequencies ../shared/data/wordfreq/enwiki_vocab_min200.txt ' +
      '--method zipfian --out vec.zipf.txt --report',
    '<%= config.bin %> whiten --embeddings vec.txt --frequencies freq.txt --method uniform --out - | head',
    '<%= config.bin %> whiten --embeddings vec.txt --frequencies freq.txt --eval-sts ../shared/data/sts --sif --json',
    '<%= config.bin %> whiten --embeddings vec.txt --count-from ../shared/data/corpus/enwiki --out vec.zipf.txt',
    '<%= config.bin %> whiten --embeddings runs/x/checkpoint --frequencies data/shards --out wte.zipf.txt',
    '<%= config.bin %> whiten --embeddings GoogleNews-vectors-negative300.bin.gz --max-vocab 200000 ' +
      '--frequencies ../shared/data/wordfreq/enwiki_vocab_min200.txt --out gn.zipf.bin',
  ];
  static override flags = {
    embeddings: Flags.string({
      description:
        'word vectors: word2vec text, GloVe text, word2vec binary (.bin), .npy with a vocabulary file (each plain ' +
        'or .gz), or an hlm checkpoint directory (token embeddings; words = token ids)',
      required: true,
    }),
    vocab: Flags.string({
      description:
        'vocabulary of an .npy --embeddings, one word per line (default: the .npy path with .vocab for .npy)',
    }),
    frequencies: Flags.string({
      description:
        '"word count" lines (plain or .gz), or (checkpoint input) llm.c token shards: a .bin file or a directory of ' +
        'them',
    }),
    'count-from': Flags.string({
      description:
        'count word frequencies from this text corpus (file or directory: text, WikiExtractor, JSONL, plain or .gz) ' +
        "instead of --frequencies; with a checkpoint --embeddings, token ids counted with the checkpoint's tokenizer",
    }),
    method: Flags.option({
      options: WHITEN_METHODS,
      default: 'zipfian' as const,
      description: 'zipfian | uniform | center | abtt',
    })(),
    out: Flags.string({ description: 'output file, "-" for stdout (same format as the input unless --format)' }),
    format: Flags.option({ options: EMBEDDING_FORMATS, description: "output format (default: the input's)" })(),
    'max-vocab': Flags.integer({
      description:
        'read only the first N rows of the embedding file (the N most frequent words: word2vec, GloVe and fastText ' +
        'files are sorted by frequency); the rest of the file is not read',
      min: 1,
    }),
    report: Flags.boolean({
      description: 'Sym1/Sym2 symmetry scores of input and output, under p and under the uniform measure',
      default: false,
    }),
    epsilon: floatFlag({
      min: 0,
      description: 'added to the covariance eigenvalues before Λ^(−1/2) (zipfian, uniform); default none',
    }),
    'abtt-k': Flags.integer({ description: 'principal components removed by abtt', default: 3, min: 0 }),
    'eval-sts': Flags.string({
      description:
        'directory with sts-test.csv / SICK_test_annotated.txt / STS.input.*.txt: Spearman×100 of mean-vector ' +
        'cosines, input vs output',
    }),
    sif: Flags.boolean({
      description:
        'with --eval-sts: also the SIF baseline (a/(a+p) weights, a = 1e-3, first principal component removed) on ' +
        'the input vectors',
      default: false,
    }),
    device: deviceFlag,
  };

  async run(): Promise<WhitenCommandResult> {
    const { flags } = await this.parse(Whiten);
    const toStdout = flags.out === '-';
    if (toStdout && this.jsonEnabled())
      throw new HlmError('--out - and --json both want stdout: write the vectors to a file');
    const epsilon = flags.epsilon;
    if (flags.frequencies !== undefined && flags['count-from'] !== undefined)
      throw new HlmError('give either --frequencies or --count-from, not both');
    if (flags.frequencies === undefined && flags['count-from'] === undefined)
      throw new HlmError('word frequencies needed: give --frequencies <file|shards> or --count-from <corpus>');
    if (flags.sif && !flags['eval-sts'])
      throw new HlmError('--sif is a baseline of --eval-sts: give --eval-sts <dir> too');
    if (flags.out && !toStdout) checkOutputFile(flags.out, 'whitened embeddings');
    const maxVocab = flags['max-vocab'];
    const t0 = performance.now();
    const checkpoint = isCheckpointDir(flags.embeddings);
    if (checkpoint && maxVocab !== undefined)
      throw new HlmError(
        "--max-vocab keeps the first rows of an embedding file (sorted by frequency); a checkpoint's rows are " +
          'token ids: leave it out',
      );
    const ck = checkpoint ? await readCheckpointEmbeddings(flags.embeddings) : undefined;
    const freqPath = (flags.frequencies ?? flags['count-from'])!;
    let source: 'file' | 'shards' | 'corpus';
    let counts: Map<string, number>;
    let tokenizer: string | undefined;
    if (flags['count-from'] !== undefined) {
      source = 'corpus';
      if (ck) ({ counts, tokenizer } = await countCorpusTokens(flags['count-from'], ck.dir, ck.vocabSize));
      else counts = await countCorpusWords(flags['count-from']);
    } else if (looksLikeShards(freqPath)) {
      if (!ck)
        throw new HlmError(
          `--frequencies ${freqPath}: token shards count token ids, which only a checkpoint --embeddings has; give ` +
            `a "word count" file`,
        );
      source = 'shards';
      counts = countShardTokens(freqPath, ck.vocabSize);
    } else {
      source = 'file';
      counts = await readFrequencies(freqPath);
    }
    // The frequencies first: rows of the embedding file without one are read past, never kept.
    const emb =
      ck ??
      (await readEmbeddings(flags.embeddings, undefined, { vocab: flags.vocab, maxVocab, keep: (w) => counts.has(w) }));
    if (toStdout && (flags.format ?? emb.format) === 'npy')
      throw new HlmError(
        '--out - cannot carry npy output (the words go to a separate .vocab file): give a file name or --format ' +
          'word2vec',
      );
    const inFormat = ck ? ('checkpoint' as const) : emb.format;
    const readMs = performance.now() - t0;
    log.info(
      `${flags.embeddings}: ${emb.rows} words × ${emb.dim} (${inFormat}), ${emb.words.length} with a frequency; ` +
        `${freqPath}: ${counts.size} ${source === 'shards' || tokenizer ? 'token ids' : 'words'} ` +
        `(${readMs.toFixed(0)} ms)`,
    );
    const gpu = await this.openGpu(flags.device);
    const names = { embeddings: flags.embeddings, frequencies: freqPath };
    const r = await whiten(gpu, emb, counts, flags.method, {
      epsilon,
      abttK: flags['abtt-k'],
      report: flags.report,
      names,
    });
    log.info(
      `${flags.method}: ${r.out.words.length} words kept (${emb.rows - r.out.words.length} without a frequency, ` +
        `${r.dropped.noVector} frequencies without a vector); fit ${r.timings.fitMs.toFixed(0)} ms, apply ` +
        `${r.timings.applyMs.toFixed(0)} ms`,
    );
    const result: WhitenCommandResult = {
      method: flags.method,
      device: gpu.name,
      input: { path: flags.embeddings, format: inFormat, words: emb.rows, dim: emb.dim },
      frequencies: { path: freqPath, source, words: counts.size, ...(tokenizer ? { tokenizer } : {}) },
      kept: r.out.words.length,
      dropped: { noFrequency: emb.rows - r.out.words.length, noVector: r.dropped.noVector },
      ...(epsilon !== undefined ? { epsilon } : {}),
      ...(flags.method === 'abtt' ? { abttK: flags['abtt-k'] } : {}),
      timings: { readMs, ...r.timings },
    };
    // Human-readable lines go to stdout unless the vectors do.
    const say = (s: string) => (toStdout ? process.stderr.write(s + '\n') : this.log(s));
    if (flags.out) {
      const t = performance.now();
      writeEmbeddings(flags.out, r.out, flags.format ?? emb.format);
      result.timings.writeMs = performance.now() - t;
      if (!toStdout) result.out = flags.out;
      log.info(`wrote ${toStdout ? 'stdout' : flags.out} (${result.timings.writeMs.toFixed(0)} ms)`);
    }
    if (r.symmetry) {
      result.symmetry = r.symmetry;
      say(`input:  ${fmtSym(r.symmetry.input)}`);
      say(`output: ${fmtSym(r.symmetry.output)}`);
    }
    if (flags['eval-sts']) {
      const sets = findStsDatasets(flags['eval-sts']);
      const aligned = align(emb, counts, names);
      const raw = aligned.emb;
      result.sts = { input: sets.map((s) => evaluateSts(raw, s)), output: sets.map((s) => evaluateSts(r.out, s)) };
      if (flags.sif) result.sts.sif = sets.map((s) => evaluateSts(raw, s, { sif: { p: aligned.p, a: SIF_A } }));
      for (let i = 0; i < sets.length; i++) {
        const a = result.sts.input[i];
        const b = result.sts.output[i];
        const c = result.sts.sif?.[i];
        const sif = c ? `  SIF ${c.spearman.toFixed(2)}` : '';
        const empty = a.empty ? `  (${a.empty} pairs without known words)` : '';
        say(
          `${a.name.padEnd(14)} ${String(a.pairs).padStart(5)} pairs  input ${a.spearman.toFixed(2)}  ` +
            `${flags.method} ${b.spearman.toFixed(2)}${sif}${empty}`,
        );
      }
    }
    return result;
  }
}
