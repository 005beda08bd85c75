import { accuracy, f1, glueAverage, matthews, meanStd, summarizeSeeds, taskScore } from '../src/glue/metrics.js';
import { averageRanks, pearson, spearman } from '../src/util/stats.js';

// Values are worked out by hand (see the comments); `close` fails on NaN.
function close(got: number, want: number, tol = 1e-12) {
  if (!(Math.abs(got - want) <= tol)) throw new Error(`got ${got}, expected ${want}`);
}

test('accuracy', () => {
  close(accuracy([1, 0, 1, 1], [1, 0, 0, 1]), 0.75);
  close(accuracy([2, 1, 0], [2, 1, 0]), 1);
  close(accuracy([0, 0, 0], [1, 1, 1]), 0);
  close(accuracy(Int32Array.from([1, 2]), Float64Array.from([1, 0])), 0.5);
});

test('F1 of the positive class', () => {
  close(f1([1, 0, 1, 1], [1, 0, 0, 1]), 0.8); // tp 2, fp 1, fn 0: 4/5
  close(f1([1, 1, 0, 0, 1], [1, 0, 1, 0, 0]), 0.4); // tp 1, fp 2, fn 1: 2/5
  close(f1([0, 0, 0], [1, 0, 1]), 0); // no positive prediction: 0, not NaN
  close(f1([0, 0], [0, 0]), 0); // no positives at all
  close(f1([1, 0, 1], [1, 0, 1]), 1);
  close(f1([1, 0, 1, 1], [1, 0, 0, 1], 0), 2 / 3); // class 0: tp 1, fp 0, fn 1
});

test('Matthews correlation: binary, multiclass and the degenerate cases', () => {
  close(matthews([1, 1, 0, 0, 1], [1, 0, 1, 0, 0]), -1 / 6); // tp 1 tn 1 fp 2 fn 1: (1−2)/√(3·2·3·2)
  // tp 6, tn 3, fp 1, fn 2: (18 − 2)/√(7·8·4·5)
  const pred = [1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0];
  const gold = [1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1];
  close(matthews(pred, gold), 16 / Math.sqrt(1120));
  close(matthews([0, 1, 1, 0], [0, 1, 1, 0]), 1);
  close(matthews([1, 0, 0, 1], [0, 1, 1, 0]), -1);
  close(matthews([1, 1, 1, 1], [0, 1, 1, 0]), 0); // constant predictor: 0, not NaN
  close(matthews([0, 0, 0], [0, 1, 0]), 0);
  close(matthews([0, 1, 1], [1, 1, 1]), 0); // constant labels
  close(matthews([1], [1]), 0);
  // three classes, c = 5, s = 6, p = (2,1,3), t = (2,2,2): (5·6 − 12)/√((36−14)(36−12))
  close(matthews([0, 0, 1, 2, 2, 2], [0, 0, 1, 1, 2, 2]), 18 / Math.sqrt(528));
});

test('Pearson and Spearman, ties and constants', () => {
  const x = [1, 2, 3, 4, 5];
  const y = [2, 4, 5, 4, 5];
  close(pearson(x, y), 6 / Math.sqrt(60)); // sxy 6, sxx 10, syy 6
  expect(Array.from(averageRanks(y))).toEqual([1, 2.5, 4.5, 2.5, 4.5]);
  expect(Array.from(averageRanks([10, 20, 20, 5]))).toEqual([2, 3.5, 3.5, 1]);
  expect(Array.from(averageRanks([7, 7, 7]))).toEqual([2, 2, 2]);
  close(spearman(x, y), 7 / Math.sqrt(90)); // ranks of y centred: −2, −.5, 1.5, −.5, 1.5
  close(spearman([1, 2, 3], [1, 10, 100]), 1); // monotone but not linear
  expect(pearson([1, 2, 3], [1, 10, 100])).toBeLessThan(0.99);
  close(pearson([1, 2, 3], [6, 4, 2]), -1);
  close(spearman([1, 2, 3, 4], [9, 3, 2, 1]), -1);
  close(pearson([2, 2, 2], [1, 2, 3]), 0); // constant input: 0, not NaN
  expect(
    pearson(
      new Array(20).fill(2.1234567),
      Array.from({ length: 20 }, (_, i) => i % 7),
    ),
  ).toBe(0); // exactly 0, though the rounded mean is not 2.1234567
  close(spearman([1, 2, 3], [4, 4, 4]), 0);
  close(pearson([1e9 + 1, 1e9 + 2, 1e9 + 3], [1, 2, 3]), 1, 1e-9); // centred: no cancellation
});

test('metrics reject mismatched lengths, empty input and NaN', () => {
  expect(() => accuracy([1], [1, 0])).toThrow('1 predictions for 2 labels');
  expect(() => pearson([], [])).toThrow('no examples');
  expect(() => pearson([NaN, 1], [0, 1])).toThrow('prediction 0 is NaN');
  expect(() => matthews([0, 1], [0, Infinity])).toThrow('label 1 is Infinity');
});

test('taskScore reports each task the way GLUE does', () => {
  const cola = taskScore('cola', [1, 1, 0, 0, 1], [1, 0, 1, 0, 0]);
  expect(Object.keys(cola.metrics)).toEqual(['mcc']);
  close(cola.score, -1 / 6);
  const mrpc = taskScore('mrpc', [1, 0, 1, 1], [1, 0, 0, 1]);
  expect(Object.keys(mrpc.metrics)).toEqual(['f1', 'accuracy']);
  close(mrpc.metrics.f1!, 0.8);
  close(mrpc.metrics.accuracy!, 0.75);
  close(mrpc.score, 0.775);
  const qqp = taskScore('qqp', { dev: [1, 0, 1, 1] }, { dev: [1, 0, 0, 1] });
  close(qqp.score, 0.775);
  const stsb = taskScore('stsb', [1, 2, 3, 4, 5], [2, 4, 5, 4, 5]);
  expect(Object.keys(stsb.metrics)).toEqual(['pearson', 'spearman']);
  close(stsb.score, (6 / Math.sqrt(60) + 7 / Math.sqrt(90)) / 2);
  const mnli = taskScore(
    'mnli',
    { dev_matched: [0, 1, 2, 2], dev_mismatched: [0, 0] },
    { dev_matched: [0, 1, 2, 0], dev_mismatched: [0, 1] },
  );
  expect(mnli.metrics).toEqual({ matched_accuracy: 0.75, mismatched_accuracy: 0.5 });
  close(mnli.score, 0.625);
  expect(() => taskScore('mnli', [0], [0])).toThrow('must be given per split (dev_matched, dev_mismatched)');
  expect(() => taskScore('mnli', { dev_matched: [0] }, { dev_matched: [0] })).toThrow(
    'no predictions for dev_mismatched',
  );
  for (const t of ['sst2', 'qnli', 'rte', 'wnli'] as const) {
    const s = taskScore(t, [0, 1, 1, 0], [0, 1, 0, 0]);
    expect(s.metrics).toEqual({ accuracy: 0.75 });
    close(s.score, 0.75);
  }
  // GLUE average: per task the mean of its metrics, then the mean over tasks
  close(glueAverage([mrpc, cola, mnli]), (0.775 - 1 / 6 + 0.625) / 3);
  expect(() => glueAverage([])).toThrow('no task scores');
  expect(() => glueAverage([cola, cola])).toThrow('CoLA given twice');
});

test('mean and sample standard deviation over seeds', () => {
  const m = meanStd([1, 2, 3, 4]);
  close(m.mean, 2.5);
  close(m.std, Math.sqrt(5 / 3));
  expect(m.n).toBe(4);
  expect(meanStd([0.7])).toEqual({ mean: 0.7, std: 0, n: 1 });
  expect(() => meanStd([])).toThrow('no values');
  expect(() => meanStd([1, NaN])).toThrow('value NaN');
  const runs = [
    taskScore('mrpc', [1, 0, 1, 1], [1, 0, 0, 1]), // f1 .8, acc .75
    taskScore('mrpc', [1, 0, 0, 1], [1, 0, 0, 1]), // f1 1, acc 1
  ];
  const s = summarizeSeeds(runs);
  close(s.metrics.f1!.mean, 0.9);
  close(s.metrics.f1!.std, Math.sqrt(0.02));
  close(s.metrics.accuracy!.mean, 0.875);
  close(s.score.mean, 0.8875);
  close(s.score.std, Math.sqrt(2 * 0.1125 ** 2));
  expect(() => summarizeSeeds([runs[0], taskScore('cola', [1], [1])])).toThrow('mixes MRPC and CoLA');
});
