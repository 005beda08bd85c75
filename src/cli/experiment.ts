// What `hlm experiment …` prints: the report's tables (not its summary, which the report files
// hold) and where the files are; with --json, the files and the whole result.
import type { ExperimentResult } from '../report/experiment.js';
import { renderMarkdown, type WrittenReport } from '../report/report.js';

export interface ExperimentCommandResult {
  out: string;
  files: { result: string; markdown: string; html: string; plots: string[] };
  /** Phases this invocation ran, and those it found done. */
  ran: string[];
  skipped: string[];
  result: ExperimentResult;
}

export function experimentSummary(r: {
  out: string;
  result: ExperimentResult;
  report: WrittenReport;
  ran?: string[];
  skipped?: string[];
}): { text: string; result: ExperimentCommandResult } {
  const { doc } = r.report;
  const tables = renderMarkdown({
    title: doc.title,
    sections: doc.sections
      .filter((s) => s.title !== 'Summary')
      .map((s) => ({ title: s.title, tables: s.tables, paragraphs: s.title === 'Notes' ? s.paragraphs : [] })),
  });
  const phases = r.result.phases.filter((p) => p.status === 'done').length;
  const text =
    tables +
    `\n${phases} of ${r.result.phases.length} phases done. Wrote ${r.report.markdown}, ${r.report.html}, ` +
    `${r.report.result} and ${r.report.plots.length} plots in ${r.out}/plots.`;
  const ran = r.ran ?? r.result.phases.map((p) => p.name);
  return {
    text,
    result: {
      out: r.out,
      files: {
        result: r.report.result,
        markdown: r.report.markdown,
        html: r.report.html,
        plots: r.report.plots.map((p) => p.file),
      },
      ran,
      skipped: r.skipped ?? [],
      result: r.result,
    },
  };
}
