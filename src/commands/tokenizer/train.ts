import { Flags } from '@oclif/core';
import { HlmCommand } from '../../cli/base.js';
import {
  DEFAULT_LANGUAGES,
  trainTokenizer,
  type CoverageStats,
  type TrainTokenizerResult,
} from '../../data/tokenizer-train.js';
import { MAX_TRAINED_VOCAB } from '../../data/hf-tokenizer.js';

const pct = (x: number) => `${(100 * x).toFixed(2)}%`;

function row(label: string, s: CoverageStats): string {
  return (
    `${label.padEnd(12)} ${String(s.documents).padStart(6)} ${String(s.characters).padStart(11)} ` +
    `${s.charsPerToken.toFixed(3).padStart(9)} ` +
    `${s.tokensPerChar.toFixed(3).padStart(8)} ${pct(s.singleByteFraction).padStart(9)} ` +
    `${pct(s.byteFallbackFraction).padStart(9)} ${pct(s.splitCharFraction).padStart(9)}`
  );
}

export default class TokenizerTrain extends HlmCommand {
  static override summary = 'Train a byte-level BPE tokenizer on a corpus and write a Hugging Face tokenizer.json.';
  static override description =
    "Trains GPT-2-style byte-level BPE (GPT-2's pre-tokenizer; ids 0..255 are the bytes, then the merges, then " +
    '<|endoftext|>) on ' +
    'text files or directories (plain text, WikiExtractor output, JSONL), writes the tokenizer.json atomically, and ' +
    'measures it on ' +
    'the same corpus: characters per token overall, per language (from file names such as eng.txt or ' +
    'tatoeba.fra-eng.fra) and per ' +
    'script, and how much text falls back to single-byte tokens. The result is smaller than asked only when the ' +
    'corpus runs out of pairs to merge.';
  static override examples = [
    '<%= config.bin %> tokenizer train --data ../shared/data/multilingual/udhr ' +
      '../shared/data/multilingual/tatoeba_laser_v1 --vocab-size 16000 --out runs/tok-multi',
    '<%= config.bin %> tokenizer train --data corpus.jsonl --vocab-size 8000 --out tok.json --json | jq ' +
      '.coverage.overall',
    '<%= config.bin %> tokenizer train --data ../shared/data/multilingual/udhr --vocab-size 4000 --out runs/tok ' +
      '--languages eng,zho,hin',
  ];
  static override flags = {
    data: Flags.string({
      multiple: true,
      required: true,
      description: 'text files or directories: plain UTF-8 text, WikiExtractor output, JSONL',
    }),
    'vocab-size': Flags.integer({
      default: 16000,
      description: `tokens, counting the 256 bytes and <|endoftext|> (257 to ${MAX_TRAINED_VOCAB})`,
    }),
    out: Flags.string({
      required: true,
      description: 'a directory (tokenizer.json is written inside) or a file path ending in .json',
    }),
    languages: Flags.string({
      default: DEFAULT_LANGUAGES.join(','),
      description:
        'comma-separated language codes to report coverage for, where file names carry them (ara also takes arb, ' +
        'zho takes cmn)',
    }),
  };

  async run(): Promise<TrainTokenizerResult> {
    const { flags } = await this.parse(TokenizerTrain);
    const languages = flags.languages
      .split(',')
      .map((l) => l.trim())
      .filter(Boolean);
    const r = await trainTokenizer({ data: flags.data, vocabSize: flags['vocab-size'], out: flags.out, languages });
    const c = r.corpus;
    const short =
      r.vocabSize < r.requestedVocabSize
        ? ` (asked for ${r.requestedVocabSize}; the corpus ran out of pairs to merge)`
        : '';
    this.log(`wrote ${r.path}: ${r.vocabSize} tokens${short}, <|endoftext|> = ${r.eotId}`);
    this.log(`corpus: ${c.files} files, ${c.documents} documents, ${c.characters} characters, ${c.bytes} bytes`);
    this.log(
      `time: ${r.seconds.total.toFixed(1)} s (read ${r.seconds.read.toFixed(1)}, train ` +
        `${r.seconds.train.toFixed(1)}, measure ${r.seconds.measure.toFixed(1)})`,
    );
    this.log('');
    this.log(
      `${''.padEnd(12)} ${'docs'.padStart(6)} ${'chars'.padStart(11)} ${'chars/tok'.padStart(9)} ` +
        `${'tok/char'.padStart(8)} ${'1-byte'.padStart(9)} ${'fallback'.padStart(9)} ${'split ch.'.padStart(9)}`,
    );
    this.log(row('all', r.coverage.overall));
    for (const [lang, s] of Object.entries(r.coverage.byLanguage)) this.log(row(lang, s));
    for (const [script, s] of Object.entries(r.coverage.byScript)) this.log(row(`[${script}]`, s));
    this.log('');
    this.log(
      '1-byte: bytes encoded by single-byte tokens; fallback: bytes of multi-byte characters among them; split ch.: ' +
        'non-ASCII characters split over tokens',
    );
    return r;
  }
}
