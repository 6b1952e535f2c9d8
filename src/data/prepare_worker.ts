// Worker thread of `litespark prepare`: loads the tokenizer once, then tokenizes the units the
// main thread sends, one at a time (messages: see prepare.ts).
import { parentPort, workerData } from 'node:worker_threads';
import { DataError } from './errors.js';
import { tokenizeUnit, type UnitSpec } from './prepare_unit.js';
import { loadTokenizer } from './tokenizer.js';

interface Init {
  tokenizerPath: string;
  outDir: string;
}

const port = parentPort;
if (!port) throw new Error('prepare_worker.js runs only as a worker thread');
const init = workerData as Init;
const tokenizer = loadTokenizer(init.tokenizerPath);

port.on('message', (spec: UnitSpec) => {
  tokenizeUnit(spec, tokenizer, init.outDir, (delta) => port.postMessage({ type: 'progress', delta }))
    .then((result) => port.postMessage({ type: 'done', result }))
    .catch((e: unknown) =>
      port.postMessage({
        type: 'error',
        message: e instanceof Error ? e.message : String(e),
        data: e instanceof DataError,
      }),
    );
});
