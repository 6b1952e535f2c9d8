// Memory bandwidth calibration, STREAM-like (McCalpin's STREAM "triad"): a[i] = b[i] + s * c[i]
// over three float64 arrays much larger than the last-level cache, on exactly `threads` OpenMP
// threads, the arrays first touched by the thread that later streams them (static schedule, so
// each page sits on that thread's NUMA node). Bytes per pass are counted as STREAM does:
// 3 x 8 x n (two loads, one store; the write-allocate read of `a` is not counted). The figure is
// the best pass after one warm-up pass, as STREAM reports its best rate.
//
// Compiled once, in the addon itself (not per ISA): the loop is bound by memory, not by the
// vector width (SSE2 loads already wait on DRAM).
#include "kernels/bandwidth.h"

#include <omp.h>
#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <new>

namespace ls {

namespace {

double now_s() {
  using clock = std::chrono::steady_clock;
  return std::chrono::duration<double>(clock::now().time_since_epoch()).count();
}

volatile double g_scalar = 3.0;  // read through volatile: the compiler cannot fold the triad
volatile double g_sink = 0.0;    // keeps the stored array live

}  // namespace

int64_t last_level_cache_bytes() {
  long l3 = sysconf(_SC_LEVEL3_CACHE_SIZE);
  if (l3 > 0) return l3;
  long l2 = sysconf(_SC_LEVEL2_CACHE_SIZE);
  return l2 > 0 ? l2 : 0;
}

double triad_gbps(int threads, double seconds, int64_t bytes_per_array) {
  if (threads < 1) threads = 1;
  const int64_t n = bytes_per_array / 8 > 1024 ? bytes_per_array / 8 : 1024;
  const size_t bytes = static_cast<size_t>((n * 8 + 63) / 64 * 64);
  double* a = static_cast<double*>(std::aligned_alloc(64, bytes));
  double* b = static_cast<double*>(std::aligned_alloc(64, bytes));
  double* c = static_cast<double*>(std::aligned_alloc(64, bytes));
  if (!a || !b || !c) {
    std::free(a), std::free(b), std::free(c);
    throw std::bad_alloc();
  }
  const int saved_dynamic = omp_get_dynamic();
  omp_set_dynamic(0);  // exactly `threads` threads
#pragma omp parallel for num_threads(threads) schedule(static)
  for (int64_t i = 0; i < n; i++) {
    a[i] = 0.0;
    b[i] = 1.0;
    c[i] = 0.5;
  }
  const double s = g_scalar;
  double best = 0.0;
  const double deadline = now_s() + (seconds > 0 ? seconds : 0);
  // Pass 0 warms up (page tables, clocks); then passes until the deadline, at least 3 timed.
  for (int pass = 0; pass < 4 || now_s() < deadline; pass++) {
    const double t0 = now_s();
#pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t i = 0; i < n; i++) a[i] = b[i] + s * c[i];
    const double t = now_s() - t0;
    if (pass > 0 && t > 0) {
      const double gbps = 3.0 * 8.0 * static_cast<double>(n) / t * 1e-9;
      if (gbps > best) best = gbps;
    }
  }
  omp_set_dynamic(saved_dynamic);
  g_sink = a[n / 2];
  std::free(a), std::free(b), std::free(c);
  return best;
}

}  // namespace ls
