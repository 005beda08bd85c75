// Fuzzing the data readers: text corpora (WikiExtractor, JSONL, plain text; plain or gzip), llm.c
// token shards and tokenizer.json files. Valid files with mutations, and raw bytes (helpers/fuzz.ts).
import { join } from 'node:path';
import { listCorpusFiles, readDocuments } from '../src/data/corpus.js';
import { readShard, SHARD_HEADER_BYTES, SHARD_MAGIC } from '../src/data/shards.js';
import { BYTE_TO_CHAR } from '../src/data/byte-level.js';
import { hfByteLevelJson } from '../src/data/tokenizer-json.js';
import { loadTokenizer } from '../src/data/tokenizer.js';
import {
  FUZZ_RUNS,
  FUZZ_TIMEOUT_MS,
  badToken,
  fc,
  fuzzParameters,
  fuzzRoot,
  jsonMutated,
  maybeGzip,
  mutated,
  rawBytes,
  readCase,
  Tally,
  word,
} from './helpers/fuzz.js';

const { root, done } = fuzzRoot('data');
afterAll(done);

const sentence = fc.array(fc.oneof(word, badToken), { maxLength: 8 }).map((ws) => ws.join(' '));

const wikiExtractor = fc
  .array(fc.tuple(fc.nat(99), word, fc.array(sentence, { maxLength: 4 })), { maxLength: 4 })
  .map((docs) =>
    docs
      .map(
        ([id, title, lines]) =>
          `<doc id="${id}" url="u?curid=${id}" title="${title}">\n${title}\n\n${lines.join('\n')}\n</doc>\n`,
      )
      .join(''),
  );
const jsonl = fc
  .array(
    fc.oneof(
      sentence.map((text) => ({ text })),
      fc.record({ text: sentence, id: fc.nat() }),
    ),
    { maxLength: 5 },
  )
  .chain((docs) => jsonMutated(fc.constant(docs)))
  .map((docs) => (Array.isArray(docs) ? docs.map((d) => JSON.stringify(d)).join('\n') + '\n' : JSON.stringify(docs)));
const plainText = fc.array(sentence, { maxLength: 6 }).map((lines) => lines.join('\n'));

/** A corpus file and its name (the extension decides JSONL and shards; the content the rest). */
const corpusCase = fc
  .tuple(
    fc.oneof(
      fc.tuple(mutated(wikiExtractor), fc.constant('wiki_00')),
      fc.tuple(mutated(jsonl), fc.constantFrom('c.jsonl', 'c')),
      fc.tuple(mutated(plainText), fc.constantFrom('c.txt', 'c')),
      fc.tuple(rawBytes, fc.constantFrom('c.txt', 'c.jsonl', 'c')),
    ),
    fc.boolean(),
  )
  .chain(([[content, name], named]) =>
    maybeGzip(fc.constant(content)).map((f) => ({ bytes: f.bytes, name: f.gz && named ? `${name}.gz` : name })),
  );

test(
  `text corpora: ${FUZZ_RUNS} generated inputs read or fail with an hlm error naming the file`,
  async () => {
    const tally = new Tally('text corpora');
    await fc.assert(
      fc.asyncProperty(corpusCase, async ({ bytes, name }) => {
        const outcome = await readCase(
          root,
          { [name]: bytes },
          async (dir) => {
            for await (const doc of readDocuments(listCorpusFiles([join(dir, name)])))
              if (typeof doc !== 'string' || doc === '') throw new Error(`document ${JSON.stringify(doc)}`);
          },
          (dir) => join(dir, name),
        );
        tally.add(outcome);
      }),
      fuzzParameters(),
    );
    tally.check();
  },
  FUZZ_TIMEOUT_MS,
);

/** A shard: llm.c's 256-int header (magic, version, count) and the tokens, with header fields sometimes replaced. */
const shard = fc
  .tuple(
    fc.constantFrom(1, 2),
    fc.array(fc.nat(70000), { maxLength: 64 }),
    fc.option(fc.tuple(fc.integer({ min: 0, max: 2 }), fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 })), {
      nil: undefined,
    }),
  )
  .map(([version, tokens, change]) => {
    const head = Buffer.alloc(SHARD_HEADER_BYTES);
    head.writeInt32LE(SHARD_MAGIC, 0);
    head.writeInt32LE(version, 4);
    head.writeInt32LE(tokens.length, 8);
    if (change) head.writeInt32LE(change[1], 4 * change[0]);
    const body = version === 1 ? Uint16Array.from(tokens) : Uint32Array.from(tokens);
    return Buffer.concat([head, Buffer.from(body.buffer)]);
  });

test(
  `llm.c token shards: ${FUZZ_RUNS} generated inputs`,
  async () => {
    const tally = new Tally('token shards');
    await fc.assert(
      fc.asyncProperty(fc.oneof(mutated(shard), rawBytes), async (bytes) => {
        const outcome = await readCase(
          root,
          { 'c_000000.bin': bytes },
          (dir) => {
            const tokens = readShard(join(dir, 'c_000000.bin'));
            if (tokens.length * tokens.BYTES_PER_ELEMENT !== bytes.length - SHARD_HEADER_BYTES)
              throw new Error(`${tokens.length} tokens from ${bytes.length} bytes`);
          },
          (dir) => join(dir, 'c_000000.bin'),
        );
        tally.add(outcome);
      }),
      fuzzParameters(),
    );
    tally.check();
  },
  FUZZ_TIMEOUT_MS,
);

/** A byte-level BPE tokenizer.json: the 256 bytes, a few merges, the end-of-text token. */
const tokenizerJson = fc
  .uniqueArray(fc.tuple(fc.integer({ min: 97, max: 122 }), fc.integer({ min: 97, max: 122 })), {
    maxLength: 6,
    selector: ([a, b]) => a * 256 + b,
  })
  .map((pairs) => {
    const vocab: Record<string, number> = {};
    for (let b = 0; b < 256; b++) vocab[BYTE_TO_CHAR[b]] = b;
    const merges = pairs.map(([a, b]) => `${BYTE_TO_CHAR[a]} ${BYTE_TO_CHAR[b]}`);
    pairs.forEach(([a, b], i) => (vocab[BYTE_TO_CHAR[a] + BYTE_TO_CHAR[b]] = 256 + i));
    return hfByteLevelJson(vocab, merges, [{ id: 256 + pairs.length, content: '<|endoftext|>' }]);
  });

const tokenizerFile = fc.oneof(
  jsonMutated(tokenizerJson).map((doc) => JSON.stringify(doc)),
  mutated(tokenizerJson.map((doc) => JSON.stringify(doc))),
  rawBytes,
);

test(
  `tokenizer.json: ${FUZZ_RUNS} generated inputs load (and encode) or fail with an hlm error`,
  async () => {
    const tally = new Tally('tokenizer.json');
    await fc.assert(
      fc.asyncProperty(tokenizerFile, async (text) => {
        const outcome = await readCase(
          root,
          { 'tokenizer.json': text },
          async (dir) => {
            const tok = await loadTokenizer(join(dir, 'tokenizer.json'));
            const ids = await tok.encode('the cat, the hat');
            if (!ids.every((id) => Number.isInteger(id) && id >= 0 && id < tok.vocabSize))
              throw new Error(`ids ${ids.join(' ')} outside the vocabulary of ${tok.vocabSize}`);
          },
          (dir) => join(dir, 'tokenizer.json'),
        );
        tally.add(outcome);
      }),
      fuzzParameters(),
    );
    tally.check();
  },
  FUZZ_TIMEOUT_MS,
);
