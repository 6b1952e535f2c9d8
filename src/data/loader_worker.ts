// Prefetch thread of the packed loader (loader.ts): fills the ring of batch slots in the shared
// buffer, batch `start`, `start + 1`, ... into slot k % slots, waiting while a slot is still full.
// Any failure is written into the ring (text + kind) and its slot marked SLOT_ERROR, so the main
// thread's synchronous next() throws it; nothing is reported through events.
import { workerData } from 'node:worker_threads';
import type { WorkerInit } from './loader.js';

// Same values as loader.ts (imported dynamically below, so a failing import can still be reported).
const CTRL_STOP = 0;
const CTRL_ERR_LEN = 1;
const CTRL_ERR_KIND = 2;
const CTRL_STATE = 3;

const init = workerData as WorkerInit;
const ctrl = new Int32Array(init.ring, 0, CTRL_STATE + init.slots);

function report(e: unknown, batch: number): void {
  const err = e instanceof Error ? e : new Error(String(e));
  const isData = err.name === 'DataError';
  const layoutErrOffset = Math.ceil(((CTRL_STATE + init.slots) * 4) / 64) * 64;
  const text = Buffer.from(isData ? err.message : (err.stack ?? err.message), 'utf8').subarray(0, 4096);
  new Uint8Array(init.ring, layoutErrOffset, text.length).set(text);
  Atomics.store(ctrl, CTRL_ERR_LEN, text.length);
  Atomics.store(ctrl, CTRL_ERR_KIND, isData ? 1 : 2);
  const st = CTRL_STATE + (batch % init.slots);
  Atomics.store(ctrl, st, 2);
  Atomics.notify(ctrl, st);
}

let k = init.start;
try {
  const { BatchFiller, ringLayout, SLOT_FULL } = await import('./loader.js');
  const { spec, slots } = init;
  const layout = ringLayout(slots, spec.batch, spec.seqLen);
  const n = spec.batch * spec.seqLen;
  const inputs: Int32Array[] = [];
  const targets: Int32Array[] = [];
  for (let s = 0; s < slots; s++) {
    const off = layout.dataOffset + s * layout.slotInts * 4;
    inputs.push(new Int32Array(init.ring, off, n));
    targets.push(new Int32Array(init.ring, off + n * 4, n));
  }
  const filler = new BatchFiller(spec);
  for (; ; k++) {
    const slot = k % slots;
    const st = CTRL_STATE + slot;
    while (Atomics.load(ctrl, st) === SLOT_FULL && Atomics.load(ctrl, CTRL_STOP) === 0) {
      Atomics.wait(ctrl, st, SLOT_FULL);
    }
    if (Atomics.load(ctrl, CTRL_STOP) !== 0) break;
    filler.fill(k, inputs[slot]!, targets[slot]!);
    Atomics.store(ctrl, st, SLOT_FULL);
    Atomics.notify(ctrl, st);
  }
  filler.close();
} catch (e) {
  report(e, k);
}
