// Runs before node-gyp during `npm ci`: says plainly which build tool is missing, instead of
// leaving the user to decode a compiler or make error.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const cxx = process.env.CXX || 'g++';
const problems = [];
const runs = (cmd, args) => spawnSync(cmd, args, { encoding: 'utf8' });

for (const [tool, args, why] of [
  ['python3', ['--version'], 'node-gyp runs gyp with it'],
  ['make', ['--version'], 'node-gyp builds with it'],
  [cxx, ['--version'], 'the native kernels are C++17'],
]) {
  const r = runs(tool, args);
  if (r.error || r.status !== 0) problems.push(`${tool} not found (${why})`);
}

if (problems.length === 0) {
  const dir = mkdtempSync(join(tmpdir(), 'litespark-check-'));
  try {
    const src = join(dir, 'omp.cc');
    writeFileSync(src, '#include <omp.h>\nint main() { return omp_get_max_threads() > 0 ? 0 : 1; }\n');
    const r = runs(cxx, ['-std=c++17', '-fopenmp', src, '-o', join(dir, 'omp')]);
    if (r.error || r.status !== 0) {
      problems.push(`${cxx} cannot build an OpenMP program (-fopenmp): ${(r.stderr || String(r.error)).trim().split('\n')[0]}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (problems.length > 0) {
  process.stderr.write(
    'litespark: cannot build the native addon:\n' +
      problems.map((p) => `  - ${p}\n`).join('') +
      'Install a C++17 compiler with OpenMP, make and python3 (Debian/Ubuntu: apt-get install g++ make python3).\n',
  );
  process.exit(1);
}
