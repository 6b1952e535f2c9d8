// Helpers shared by the kernel benchmark scripts in bench/.
import { native } from '../src/kernels/native.js';

export { cpuModel } from '../src/metrics/machine.js';
export { median } from '../src/metrics/stats.js';

/** The value after `--name` on the command line, if any. */
export function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** n floats of 64-byte aligned native storage; N(0, std^2) from `seed`, or zeros when seed is 0. */
export function buffer(n: number, seed: number, std: number): Float32Array {
  const a = new Float32Array(native.alloc(4 * n));
  if (seed) native.randn(a, n, seed, 0, std);
  return a;
}
