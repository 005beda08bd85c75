import { precisionFlags, precisionOptions } from '../cli/pretrain-flags.js';
import { appendFileSync, writeFileSync } from 'node:fs';
import { Flags } from '@oclif/core';
import { HlmCommand, deviceFlag } from '../cli/base.js';
import { flagParser } from '../cli/flags.js';
import { HlmError } from '../errors.js';
import { compare, comparisonTable, medianRuns, parseThreshold, readRuns, type Comparison } from '../bench/compare.js';
import type { BenchRecord } from '../bench/record.js';
import { FORMATS, render, renderList, type ListedCase } from '../bench/report.js';
import { runBench } from '../bench/run.js';
import { describeCase, parseFilter, parseSuites, parseWeights, selectCases } from '../bench/suites.js';
import { writeFileAtomic } from '../util/atomic-write.js';
import { checkOutputFile } from '../util/output-check.js';

export interface BenchResult {
  records?: BenchRecord[];
  tests?: ListedCase[];
  comparison?: Comparison;
}

export default class Bench extends HlmCommand {
  static override summary =
    'Benchmark kernels, training steps and inference on the chosen device: one hlm.bench/1 JSON line per test.';
  static override description =
    "Suites: kernel (the device's FMA and copy peaks, matmul on square and transformer shapes in each transpose, " +
    'the CE and ' +
    'CWT loss heads, the whitening covariance, attention, LayerNorm, AdamW; each checked against its float64 ' +
    'reference), ' +
    'train (one AdamW step of each preset with the CE and the CWT head: tokens/s, and ' +
    'forward/head/backward/optimizer GPU ' +
    'time where the adapter has timestamp queries) and infer (through the KV cache of hlm generate: prefill and ' +
    'decode tokens/s, time to first token, time per output token). tinybench times samples after a warm-up; ' +
    'with --timing sustained (the default) a sample queues repetitions back to back for at least 25 ms and waits ' +
    'once, with --timing isolated it is one repetition and a wait. --compare puts a baseline (an earlier run, or ' +
    "bench/torch_bench.py's PyTorch records) beside this run and fails when a throughput fell by more than " +
    '--threshold. --from reports or compares records already written instead of measuring. Both take several ' +
    'runs (comma-separated files) and then use, per test, the run with the median throughput, its range beside it.';
  static override examples = [
    '<%= config.bin %> bench --suite kernel --quick --format md',
    '<%= config.bin %> bench --suite kernel,train --out bench.jsonl',
    '<%= config.bin %> bench --suite kernel --filter "matmul.*NT" --reps 50',
    '<%= config.bin %> bench --quick --compare baseline.jsonl --threshold 10%',
    '<%= config.bin %> bench --from hlm.jsonl --compare torch.jsonl --format md',
    '<%= config.bin %> bench --from hlm1.jsonl,hlm2.jsonl,hlm3.jsonl --compare torch1.jsonl,torch2.jsonl,torch3.jsonl',
    '<%= config.bin %> bench --suite kernel,train --list',
    '<%= config.bin %> bench --suite infer --quick --weights f32,f16,int8,q4 --format md',
    '<%= config.bin %> bench --suite kernel --filter "matmul/square.*NN" --size 512 --timing isolated',
  ];
  static override flags = {
    suite: Flags.string({ description: 'comma-separated suites: kernel, train, infer', default: 'kernel,train,infer' }),
    filter: Flags.string({
      description: 'only tests whose suite/name/test matches this regular expression (case-insensitive)',
    }),
    quick: Flags.boolean({
      description: 'small shapes and few repetitions (CI): tiny-preset shapes, train and infer suites tiny only',
    }),
    reps: Flags.integer({ description: 'timed samples per test (default: 5 with --quick, else 20)', min: 1 }),
    warmup: Flags.integer({
      description: 'warm-up repetitions before measuring, besides the first run (default: 1 with --quick, else 3)',
      min: 0,
    }),
    format: Flags.option({
      options: FORMATS,
      default: 'jsonl' as const,
      description:
        'jsonl (one record a line, appended to --out as each test ends), json, csv, or md (a table, written whole)',
    })(),
    out: Flags.string({
      description:
        'write the report here instead of stdout: jsonl records are appended as tests end (a stream), other ' +
        'formats written whole at the end',
    }),
    compare: Flags.string({
      description:
        'baseline hlm.bench/1 JSON lines: print current/baseline throughput per test, exit 1 past --threshold; ' +
        'several comma-separated files are runs of the same tests, each test taken from its median run',
    }),
    threshold: Flags.custom<number>({
      description: 'largest tolerated throughput drop for --compare: a percentage, or a fraction up to 1',
      default: 0.1,
      defaultHelp: async () => '10%',
      parse: flagParser(parseThreshold),
    })(),
    from: Flags.string({
      description:
        'take the records from this JSON-lines file instead of running (to reformat or compare); several ' +
        'comma-separated files are runs of the same tests, each test taken from its median run',
    }),
    timing: Flags.option({
      options: ['sustained', 'isolated'] as const,
      default: 'sustained' as const,
      description:
        'sustained: each timed sample queues repetitions back to back (at least 25 ms of them) and waits once, as ' +
        'work runs inside a training step; isolated: a wait after every repetition (the latency of a lone submit)',
    })(),
    size: Flags.integer({
      description: 'n of the square n×n×n matmul tests (default: 256 with --quick, else 2048)',
      min: 1,
    }),
    top: Flags.integer({
      description: 'log to stderr the N dispatches with the most GPU time in each test (needs timestamp queries)',
      min: 1,
    }),
    list: Flags.boolean({ description: 'list the selected tests without running them' }),
    weights: Flags.string({
      description:
        'infer suite: comma-separated weight formats to run it with (f32, f16, int8, q4; quantized once at load)',
      default: 'f32',
    }),
    ...precisionFlags(),
    device: deviceFlag,
  };

  async run(): Promise<BenchResult> {
    const { flags } = await this.parse(Bench);
    const threshold = flags.threshold;
    const baseline = flags.compare ? medianRuns(readRuns(flags.compare)) : undefined;
    const toStdout = !flags.out && !this.jsonEnabled();
    // A run's JSON lines go to --out as each test ends; any other report is written whole at the end.
    const streaming = flags.format === 'jsonl' && !flags.from && !flags.list;
    let report = '';
    const emit = (text: string) => {
      if (flags.out && streaming) {
        try {
          appendFileSync(flags.out, text);
        } catch (e) {
          throw new HlmError(`cannot write bench report ${flags.out}: ${(e as Error).message}`);
        }
      } else if (flags.out) report += text;
      else if (toStdout) process.stdout.write(text);
    };
    const writeReport = () => {
      if (flags.out && !streaming) writeFileAtomic(flags.out, report, 'bench report');
    };
    if (flags.out) {
      // Fail now, not after the run, when --out cannot be written.
      checkOutputFile(flags.out, 'bench report');
      try {
        if (streaming) writeFileSync(flags.out, '');
      } catch (e) {
        throw new HlmError(`cannot write bench report ${flags.out}: ${(e as Error).message}`);
      }
    }

    let records: BenchRecord[];
    let currentSpread: ReturnType<typeof medianRuns>['spread'] | undefined;
    if (flags.from) {
      ({ records, spread: currentSpread } = medianRuns(readRuns(flags.from)));
      emit(render(records, flags.format));
    } else {
      const suites = parseSuites(flags.suite);
      const weights = parseWeights(flags.weights);
      if (flags.weights !== 'f32' && !suites.includes('infer'))
        throw new HlmError(
          `--weights ${flags.weights} applies to the infer suite, which --suite ${flags.suite} leaves out`,
        );
      const precision = precisionOptions(flags);
      if (precision.precision !== 'auto' && !suites.includes('train'))
        throw new HlmError(`--precision applies to the train suite, which --suite ${flags.suite} leaves out`);
      const selection = selectCases(suites, flags.quick, parseFilter(flags.filter), weights, flags.size, precision);
      if (flags.list) {
        const tests = selection.cases.map(describeCase);
        emit(renderList(tests, flags.format));
        writeReport();
        return { tests };
      }
      if (!selection.cases.length)
        throw new HlmError(`no test matches --suite ${flags.suite}${flags.filter ? ` --filter ${flags.filter}` : ''}`);
      const gpu = await this.openGpu(flags.device);
      // JSON lines are flushed as each test ends; the other formats need every record first.
      records = await runBench(
        gpu,
        selection,
        { quick: flags.quick, reps: flags.reps, warmup: flags.warmup, top: flags.top, timing: flags.timing },
        (r) => {
          if (flags.format === 'jsonl') emit(JSON.stringify(r) + '\n');
        },
      );
      if (flags.format !== 'jsonl') emit(render(records, flags.format));
    }

    let comparison: Comparison | undefined;
    if (baseline) {
      comparison = compare(records, baseline.records, threshold, { current: currentSpread, baseline: baseline.spread });
      const table = comparisonTable(comparison);
      // Beside a Markdown report the table belongs to it; beside machine-readable records, on stderr.
      if (flags.format === 'md' && (toStdout || flags.out)) emit('\n' + table);
      else process.stderr.write(table);
    }
    writeReport();
    if (comparison?.regressions) {
      this.failedResult = { records, comparison };
      throw new HlmError(
        `${comparison.regressions} test(s) lost more than ${+(100 * threshold).toPrecision(6)}% of their throughput ` +
          `against ${flags.compare}`,
      );
    }
    const failed = records.filter((r) => r.status === 'error' || (r.check && !r.check.ok));
    if (failed.length && !flags.from) {
      this.failedResult = { records, comparison };
      const why = (r: (typeof failed)[number]) => r.error ?? `check ${r.check?.value} > ${r.check?.tolerance}`;
      throw new HlmError(
        `${failed.length} test(s) failed: ${failed.map((r) => `${r.name} ${r.test}: ${why(r)}`).join('; ')}`,
      );
    }
    return { records, comparison };
  }
}
