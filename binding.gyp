# The native addon: one N-API module (litespark.node) linking one static library per ISA.
# Every kernel source is compiled three times (AVX-512, AVX2+FMA, baseline x86-64) into its own
# namespace; native/src/dispatch.cc picks one table at load time by CPUID. The bf16 matrix units
# (AMX tiles, AVX-512 BF16) are one more library, compiled with those instruction sets and
# called only when dispatch.cc has found them (and Linux's AMX permission) at run time.
{
  "variables": {
    "kernel_sources": [
      "native/src/kernels/gemm.cc",
      "native/src/kernels/embedding.cc",
      "native/src/kernels/rmsnorm.cc",
      "native/src/kernels/rope.cc",
      "native/src/kernels/attention.cc",
      "native/src/kernels/flash_attention.cc",
      "native/src/kernels/linear_cross_entropy.cc",
      "native/src/kernels/swiglu.cc",
      "native/src/kernels/cross_entropy.cc",
      "native/src/kernels/adamw.cc",
      "native/src/kernels/vector.cc",
      "native/src/kernels/peak.cc",
      "native/src/kernels/decode.cc",
      "native/src/kernels/table.cc"
    ],
    "common_cflags": ["-O3", "-std=c++17", "-fopenmp", "-fno-math-errno", "-fPIC", "-Wall", "-Wextra", "-Wno-unused-parameter"]
  },
  "target_defaults": {
    "cflags!": ["-fno-exceptions", "-O2", "-O1", "-O0"],
    "cflags_cc!": ["-fno-exceptions", "-std=gnu++17", "-std=gnu++1y", "-std=gnu++20", "-O2"],
    "include_dirs": ["native/src"]
  },
  "targets": [
    {
      "target_name": "ls_kernels_avx512",
      "type": "static_library",
      "sources": ["<@(kernel_sources)"],
      "defines": ["LS_ISA=avx512"],
      "cflags_cc": ["<@(common_cflags)", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mf16c", "-mprefer-vector-width=512"]
    },
    {
      "target_name": "ls_kernels_avx2",
      "type": "static_library",
      "sources": ["<@(kernel_sources)"],
      "defines": ["LS_ISA=avx2"],
      "cflags_cc": ["<@(common_cflags)", "-mavx2", "-mfma", "-mf16c"]
    },
    {
      "target_name": "ls_kernels_scalar",
      "type": "static_library",
      "sources": ["<@(kernel_sources)"],
      "defines": ["LS_ISA=scalar"],
      "cflags_cc": ["<@(common_cflags)"]
    },
    {
      "target_name": "ls_bf16",
      "type": "static_library",
      "sources": ["native/src/bf16/gemm_bf16.cc", "native/src/bf16/head_bf16.cc", "native/src/bf16/peak_bf16.cc",
                  "native/src/bf16/flash_attention_bf16.cc"],
      "defines": ["LS_ISA=bf16_units"],
      # -Wno-maybe-uninitialized: GCC 12 warns on the _mm512_undefined_* inside its own
      # intrinsics headers (a known false positive), hundreds of lines that hide real warnings.
      "cflags_cc": ["<@(common_cflags)", "-Wno-maybe-uninitialized", "-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx512bf16", "-mamx-tile", "-mamx-bf16", "-mavx2", "-mfma", "-mprefer-vector-width=512"]
    },
    {
      "target_name": "litespark",
      "dependencies": ["ls_kernels_avx512", "ls_kernels_avx2", "ls_kernels_scalar", "ls_bf16"],
      "sources": [
        "native/src/addon.cc",
        "native/src/dispatch.cc",
        "native/src/memory.cc",
        "native/src/nvml.cc",
        # compiled once: a memory-bound loop, the vector width does not matter
        "native/src/kernels/bandwidth.cc"
      ],
      "include_dirs": ["<!(node -p \"require('node-addon-api').include_dir\")"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS", "NODE_ADDON_API_DISABLE_DEPRECATED"],
      "cflags_cc": ["<@(common_cflags)"],
      "ldflags": ["-fopenmp"],
      # dlopen of libnvidia-ml.so.1 at run time (nvml.cc); in libc itself since glibc 2.34
      "libraries": ["-ldl"]
    }
  ]
}
