// OpenBLAS peer for bench/gemm.ts: times cblas_sgemm on one shape, row-major like litespark.
//
//   cc -O2 bench/gemm_openblas.c -lopenblas -o /tmp/gemm_openblas
//   OPENBLAS_NUM_THREADS=2 /tmp/gemm_openblas M N K transA transB beta runs
//
// transA/transB/beta as in native.gemm (A: (M,K) or (K,M) when transA; B: (K,N) or (N,K) when
// transB; lda/ldb/ldc = row lengths). Prints one line:
//   core=<openblas_get_corename()> threads=<n> gflops=<median> ms_med=<> ms_min=<> ms_max=<>
// Median of `runs` timed calls after 3 warm-ups. Built and run by bench/gemm.ts only; the
// project never links OpenBLAS.
#include <cblas.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

char* openblas_get_corename(void);
int openblas_get_num_threads(void);

static int cmp(const void* a, const void* b) {
  const double x = *(const double*)a, y = *(const double*)b;
  return (x > y) - (x < y);
}

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec * 1e-6;
}

static float* buffer(long n, unsigned seed) {
  float* p = NULL;
  if (posix_memalign((void**)&p, 64, sizeof(float) * (size_t)(n > 0 ? n : 1))) exit(2);
  for (long i = 0; i < n; ++i) {  // uniform in [-0.02, 0.02): the magnitude does not matter
    seed = seed * 1664525u + 1013904223u;
    p[i] = ((float)(seed >> 8) / 16777216.0f - 0.5f) * 0.04f;
  }
  return p;
}

int main(int argc, char** argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: %s M N K transA transB beta runs\n", argv[0]);
    return 1;
  }
  const int M = atoi(argv[1]), N = atoi(argv[2]), K = atoi(argv[3]);
  const int ta = atoi(argv[4]), tb = atoi(argv[5]);
  const float beta = (float)atof(argv[6]);
  const int runs = atoi(argv[7]) > 0 ? atoi(argv[7]) : 1, warmup = 3;
  const int lda = ta ? M : K, ldb = tb ? K : N, ldc = N;
  float* A = buffer((long)M * K, 1);
  float* B = buffer((long)K * N, 2);
  float* C = buffer((long)M * N, 3);
  double* ms = malloc(sizeof(double) * runs);
  for (int r = 0; r < warmup + runs; ++r) {
    const double t0 = now_ms();
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                N, K, 1.0f, A, lda, B, ldb, beta, C, ldc);
    const double t = now_ms() - t0;
    if (r >= warmup) ms[r - warmup] = t;
  }
  qsort(ms, runs, sizeof(double), cmp);
  const double med = runs % 2 ? ms[runs / 2] : 0.5 * (ms[runs / 2 - 1] + ms[runs / 2]);
  printf("core=%s threads=%d gflops=%.3f ms_med=%.4f ms_min=%.4f ms_max=%.4f\n",
         openblas_get_corename(), openblas_get_num_threads(), 2.0 * M * N * K / (med * 1e6), med,
         ms[0], ms[runs - 1]);
  free(A);
  free(B);
  free(C);
  free(ms);
  return 0;
}
