// `litespark report DIR [--out FILE] [--bench PATH]`: the HTML report of a run or of bench
// results (src/report/report.ts). Bad input (no such directory, unreadable files) exits 2.
import { fmtBytes } from './format.js';
import { ReportError, writeReport } from '../report/report.js';

export interface ReportCliOptions {
  out?: string;
  bench?: string;
}

export async function reportCommand(dir: string, opts: ReportCliOptions): Promise<number> {
  try {
    const r = writeReport(dir, opts);
    process.stdout.write(`wrote ${r.file} (${r.kind} report, ${fmtBytes(r.bytes)})\n`);
    return 0;
  } catch (e) {
    if (e instanceof ReportError) {
      process.stderr.write(`litespark: report: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
