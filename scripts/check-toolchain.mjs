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
    // The bf16 units are compiled with AMX and AVX-512 BF16 intrinsics (GCC 11+, Clang 12+),
    // whatever CPU builds them; they only run where the CPU has them.
    const amx = join(dir, 'amx.cc');
    writeFileSync(amx, '#include <immintrin.h>\nvoid f(float* c) { _tile_zero(0); _tile_dpbf16ps(0, 1, 2); _tile_stored(0, c, 64); }\n' +
      '__m512 g(__m512 a, __m512bh b) { return _mm512_dpbf16_ps(a, b, b); }\n');
    const ra = runs(cxx, ['-std=c++17', '-c', '-mavx512f', '-mavx512bf16', '-mamx-tile', '-mamx-bf16', amx, '-o', join(dir, 'amx.o')]);
    if (ra.error || ra.status !== 0) {
      problems.push(`${cxx} cannot compile AMX / AVX-512 BF16 intrinsics (-mamx-tile -mamx-bf16 -mavx512bf16; GCC 11 or newer): ` +
        (ra.stderr || String(ra.error)).trim().split('\n')[0]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (problems.length > 0) {
  process.stderr.write(
    'litespark: cannot build the native addon:\n' +
      problems.map((p) => `  - ${p}\n`).join('') +
      'Install a C++17 compiler with OpenMP (GCC 11 or newer), make and python3 (Debian/Ubuntu: apt-get install g++ make python3).\n',
  );
  process.exit(1);
}
