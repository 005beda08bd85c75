// Fuzzing the readers of `hlm whiten`: embedding files (word2vec text and binary, GloVe, fastText
// .vec, .npy with its vocabulary; plain or gzip; with --max-vocab and a kept set), frequency files
// and vocabularies. Valid files with mutations, and raw bytes (see helpers/fuzz.ts).
import { join } from 'node:path';
import { serializeEmbeddings, serializeNpy } from '../src/whiten/formats.js';
import { readEmbeddings, readFrequencies, readVocab } from '../src/whiten/formats.js';
import {
  FUZZ_RUNS,
  FUZZ_TIMEOUT_MS,
  badToken,
  fc,
  floatText,
  fuzzParameters,
  fuzzRoot,
  maybeGzip,
  mutated,
  rawBytes,
  readCase,
  Tally,
  word,
  type Files,
} from './helpers/fuzz.js';

const { root, done } = fuzzRoot('whiten');
afterAll(done);

const words = fc.uniqueArray(word, { minLength: 1, maxLength: 12 });

/** Rows of text as an embedding file holds them: words, then `dim` numbers (sometimes a bad one). */
const textRows = fc.tuple(words, fc.integer({ min: 1, max: 6 })).chain(([ws, dim]) =>
  fc.tuple(
    fc.constant(ws),
    fc.constant(dim),
    fc.array(
      fc.array(fc.oneof({ weight: 200, arbitrary: floatText }, { weight: 1, arbitrary: badToken }), {
        minLength: dim,
        maxLength: dim,
      }),
      { minLength: ws.length, maxLength: ws.length },
    ),
    fc.constantFrom(' ', '\t', '  '),
    fc.constantFrom('\n', '\r\n'),
  ),
);

/** word2vec text (header "V d", sometimes wrong or huge) or GloVe (no header). */
const textFile = fc
  .tuple(textRows, fc.boolean(), fc.oneof(fc.constant(null), fc.tuple(fc.nat(), fc.nat())))
  .map(([[ws, dim, values, sep, nl], header, wrong]) => {
    const rows = ws.map((w, i) => [w, ...values[i]].join(sep));
    const head = header ? [wrong ? `${wrong[0]} ${wrong[1]}` : `${ws.length} ${dim}`] : [];
    return [...head, ...rows].join(nl) + nl;
  });

/** word2vec binary through the project's writer, the header sometimes replaced (wrong counts, huge sizes). */
const binaryFile = fc
  .tuple(words, fc.integer({ min: 1, max: 5 }), fc.option(fc.tuple(fc.nat(), fc.nat()), { nil: undefined }))
  .chain(([ws, dim, header]) =>
    fc.tuple(
      fc.constant(ws),
      fc.constant(dim),
      fc.float32Array({ minLength: ws.length * dim, maxLength: ws.length * dim }),
      fc.constant(header),
    ),
  )
  .map(([ws, dim, vectors, header]) => {
    const b = serializeEmbeddings({ words: ws, dim, vectors, format: 'word2vec-bin' }, 'word2vec-bin');
    if (!header) return b;
    return Buffer.concat([Buffer.from(`${header[0]} ${header[1]}`), b.subarray(b.indexOf(10))]);
  });

/** .npy through the project's writer, with its vocabulary; the header's shape sometimes replaced. */
const npyFiles = fc
  .tuple(words, fc.integer({ min: 1, max: 5 }), fc.option(fc.string({ maxLength: 24 }), { nil: undefined }))
  .chain(([ws, dim, shape]) =>
    fc.tuple(
      fc.constant(ws),
      fc.constant(dim),
      fc.float32Array({ minLength: ws.length * dim, maxLength: ws.length * dim }),
      fc.constant(shape),
    ),
  )
  .map(([ws, dim, vectors, shape]) => {
    let npy = serializeNpy({ words: ws, dim, vectors, format: 'npy' });
    if (shape !== undefined) npy = Buffer.from(npy.toString('latin1').replace(/\(\d+, \d+\)/, `(${shape})`), 'latin1');
    return { npy, vocab: ws.join('\n') + '\n' };
  });

type Case = { files: Files; path: string };

const ext = fc.constantFrom('.txt', '.vec', '');

const embeddingCase: fc.Arbitrary<Case> = fc.oneof(
  fc.tuple(maybeGzip(fc.oneof(mutated(textFile), rawBytes)), ext, fc.boolean()).map(([f, e, named]) => {
    const path = `v${e}${f.gz && named ? '.gz' : ''}`;
    return { files: { [path]: f.bytes }, path };
  }),
  fc.tuple(maybeGzip(fc.oneof(mutated(binaryFile), rawBytes)), fc.boolean()).map(([f, named]) => {
    const path = `v.bin${f.gz && named ? '.gz' : ''}`;
    return { files: { [path]: f.bytes }, path };
  }),
  fc
    .tuple(
      maybeGzip(
        fc
          .oneof(
            npyFiles.map((x) => x.npy),
            rawBytes,
          )
          .chain((b) => mutated(fc.constant(b))),
      ),
      npyFiles,
    )
    .chain(([f, x]) =>
      fc.tuple(fc.constant(f), mutated(fc.constant(x.vocab)), fc.boolean()).map(([npy, vocab, named]) => {
        const path = `v.npy${npy.gz && named ? '.gz' : ''}`;
        return { files: { [path]: npy.bytes, 'v.vocab': vocab }, path };
      }),
    ),
);

/** What whiten asks of a reader: everything, the first N rows, or the rows of a kept set. */
const readOptions = fc.record(
  {
    maxVocab: fc.integer({ min: 1, max: 20 }),
    keep: fc.uniqueArray(word, { maxLength: 6 }),
  },
  { requiredKeys: [] },
);

test(
  `embedding files: ${FUZZ_RUNS} generated inputs read or fail with an hlm error naming the file`,
  async () => {
    const tally = new Tally('embeddings');
    await fc.assert(
      fc.asyncProperty(embeddingCase, readOptions, async ({ files, path }, o) => {
        const keep = o.keep && new Set(o.keep);
        const outcome = await readCase(
          root,
          files,
          async (dir) => {
            const e = await readEmbeddings(join(dir, path), undefined, {
              maxVocab: o.maxVocab,
              keep: keep && ((w) => keep.has(w)),
            });
            // What is returned is whole: one row of dim finite values per kept word, at most maxVocab rows read.
            if (e.vectors.length !== e.words.length * e.dim || !e.vectors.every(Number.isFinite))
              throw new Error(`inconsistent result: ${e.words.length} words × ${e.dim}, ${e.vectors.length} values`);
            if (o.maxVocab !== undefined && e.rows > o.maxVocab) throw new Error(`${e.rows} rows read past maxVocab`);
          },
          // An .npy's vocabulary may be the file at fault: the message names one of the case's files.
          (dir) => dir,
        );
        tally.add(outcome);
      }),
      fuzzParameters(),
    );
    tally.check();
  },
  FUZZ_TIMEOUT_MS,
);

const frequencyFile = fc
  .array(fc.tuple(word, fc.oneof({ weight: 10, arbitrary: fc.nat().map(String) }, { weight: 1, arbitrary: badToken })))
  .map((rows) => rows.map(([w, c]) => `${w} ${c}`).join('\n') + '\n');

test(
  `frequency files and vocabularies: ${FUZZ_RUNS} generated inputs each`,
  async () => {
    const tallies = { frequencies: new Tally('frequencies'), vocabulary: new Tally('vocabularies') };
    await fc.assert(
      fc.asyncProperty(maybeGzip(fc.oneof(mutated(frequencyFile), rawBytes)), async (f) => {
        const path = `f.txt${f.gz ? '.gz' : ''}`;
        const frequencies = async (dir: string) => {
          const counts = await readFrequencies(join(dir, path));
          for (const c of counts.values()) if (!(c > 0 && Number.isFinite(c))) throw new Error(`count ${c} accepted`);
        };
        const vocabulary = async (dir: string) => {
          const ws = await readVocab(join(dir, path));
          if (new Set(ws).size !== ws.length || ws.includes('')) throw new Error('a bad vocabulary accepted');
        };
        for (const [name, read] of [
          ['frequencies', frequencies],
          ['vocabulary', vocabulary],
        ] as const)
          tallies[name].add(await readCase(root, { [path]: f.bytes }, read, (dir) => join(dir, path)));
      }),
      fuzzParameters(),
    );
    tallies.frequencies.check();
    tallies.vocabulary.check();
  },
  FUZZ_TIMEOUT_MS,
);
