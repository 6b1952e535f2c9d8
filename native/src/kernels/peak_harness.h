// The timing harness shared by every peak calibration loop (peak.cc per ISA, bf16/peak_bf16.cc
// for the bf16 units): exactly `threads` OpenMP threads, a warm-up, then each thread runs its
// loop until a common deadline; FLOP/s = all threads' iterations x flops per iteration / time.
#pragma once
#include <omp.h>

#include <chrono>
#include <cstdint>

namespace ls {

inline double peak_now_s() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

// Keeps the loops' results live: the compiler cannot drop work whose result is stored here.
inline volatile float peak_sink = 0.0f;

// loop(deadline, max_chunks, &result) runs chunks of work, checking peak_now_s() between chunks,
// until the deadline or max_chunks; returns the iterations done and writes a value derived from
// its accumulators (kept live so the compiler cannot drop the work). Returns GFLOP/s.
template <class Loop>
double measure_peak_gflops(int threads, double seconds, double flops_per_iter, Loop loop) {
  if (threads < 1) threads = 1;
  if (!(seconds > 0)) seconds = 0;
  // Warm-up lets the cores settle at the clock they hold under wide-vector load (AVX-512 / AMX
  // frequency licence) before the timed part starts: 10% of the run, at most 50 ms.
  const double warmup = seconds * 0.1 < 0.05 ? seconds * 0.1 : 0.05;
  const int saved_dynamic = omp_get_dynamic();
  omp_set_dynamic(0);  // exactly `threads` threads, never fewer

  double t0 = 0, t1 = 0;
  double flops = 0;
  float sink = 0;
#pragma omp parallel num_threads(threads) reduction(+ : flops, sink)
  {
    float r = 0;
    const double start = peak_now_s();
    loop(start + warmup, int64_t{1} << 30, &r);  // warm-up, not counted
    sink += r;
#pragma omp barrier
#pragma omp master
    t0 = peak_now_s();
#pragma omp barrier
    // At least one chunk each, so a tiny `seconds` still measures something.
    const int64_t iters = loop(t0 + seconds, int64_t{1} << 40, &r);
    flops += static_cast<double>(iters) * flops_per_iter;
    sink += r;
#pragma omp barrier
#pragma omp master
    t1 = peak_now_s();
  }
  omp_set_dynamic(saved_dynamic);
  peak_sink = sink;
  const double elapsed = t1 - t0;
  return elapsed > 0 ? flops / elapsed * 1e-9 : 0.0;
}

}  // namespace ls
