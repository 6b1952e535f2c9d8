// Small helpers shared by the bench worker, the parent and the peer script.
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export { median } from '../metrics/stats.js';

/** Mulberry32 stream of token ids in [0, vocab): seeded, independent of threads. */
export function randomTokens(n: number, vocab: number, seed: number): Int32Array {
  let a = seed >>> 0;
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * vocab);
  }
  return out;
}

/** The package root (dist/src/bench/util.js -> three levels up). */
export const PACKAGE_ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

/** `git rev-parse --short HEAD` of the package, and whether tracked files differ from it; nulls outside git. */
export function gitCommit(): { commit: string | null; dirty: boolean | null } {
  const git = (args: string[]) =>
    execFileSync('git', args, { cwd: PACKAGE_ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  try {
    const commit = git(['rev-parse', '--short', 'HEAD']);
    let dirty: boolean | null = null;
    try {
      dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
    } catch {
      // status unavailable: unknown
    }
    return { commit: commit || null, dirty };
  } catch {
    return { commit: null, dirty: null };
  }
}

/** The last line of an error text that says something (a stack's first line, a native message). */
export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * The reason a child process failed, from its stderr: the first `SomeError: message` line of an
 * uncaught exception, else the last lines that are not stack frames or Node's version banner.
 */
export function failureReason(stderr: string): string {
  const lines = stderr.split('\n').map((l) => l.trimEnd()).filter((l) => l.trim() !== '');
  const thrown = lines.find((l) => /^[A-Za-z]*Error(\s*\[[^\]]*\])?: /.test(l));
  if (thrown) return thrown;
  return lines.filter((l) => !/^\s+at /.test(l) && !/^Node\.js v/.test(l)).slice(-3).join(' | ');
}
