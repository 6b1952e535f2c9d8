// A bench worker: one process per row (or per config with --kernels-only), so each row's peak
// memory is its own and a crash costs only that row. Started by run.ts as
//   node dist/src/bench/worker.js '<BenchJob as JSON>'
// It prints JSON lines on stdout (progress events, then one 'rows' event) and exits 0; any
// error goes to stderr with exit 1, and the parent turns it into a failed row.
import type { BenchJob, WorkerEvent } from './job.js';
import { runKernelRows } from './kernels.js';
import { runStepRow } from './step.js';

function emit(e: WorkerEvent): void {
  process.stdout.write(JSON.stringify(e) + '\n');
}

function main(): void {
  const arg = process.argv[2];
  if (!arg) throw new Error('usage: worker.js <job JSON>');
  const job = JSON.parse(arg) as BenchJob;
  if (job.mode === 'step') {
    const row = runStepRow(job, (done, total) => emit({ event: 'progress', done, total, what: 'step' }));
    emit({ event: 'rows', rows: [row] });
  } else {
    const rows = runKernelRows(job, (done, total, what) => emit({ event: 'progress', done, total, what }));
    emit({ event: 'rows', rows });
  }
}

try {
  main();
} catch (e) {
  process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  process.exitCode = 1;
}
