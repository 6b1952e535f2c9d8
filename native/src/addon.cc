// The N-API face of the kernels: converts and checks arguments (types, lengths, ranges), then
// calls one plain C++ function from the dispatched kernel table. No kernel logic lives here.
//
// Float buffers are Float32Array (training path) or Float64Array (float64 reference path); every
// float buffer of one call must share the dtype. Index buffers are Int32Array.
#include <napi.h>
#include <omp.h>

#include <string>
#include <vector>
#include <type_traits>

#include "bf16/units.h"
#include "dispatch.h"
#include "kernels/bandwidth.h"
#include "kernels/f16.h"
#include "memory.h"
#include "nvml.h"

#include <cpuid.h>

namespace {

using ls::KernelTable;

enum class DType { F32, F64 };

[[noreturn]] void fail(Napi::Env env, const std::string& msg) {
  throw Napi::TypeError::New(env, msg);
}

int64_t int_arg(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t min = 0) {
  if (i >= info.Length() || !info[i].IsNumber()) fail(info.Env(), std::string(name) + ": expected a number");
  double d = info[i].As<Napi::Number>().DoubleValue();
  int64_t v = static_cast<int64_t>(d);
  if (static_cast<double>(v) != d) fail(info.Env(), std::string(name) + ": expected an integer");
  if (v < min) fail(info.Env(), std::string(name) + ": must be >= " + std::to_string(min));
  return v;
}

double num_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsNumber()) fail(info.Env(), std::string(name) + ": expected a number");
  return info[i].As<Napi::Number>().DoubleValue();
}

bool bool_arg(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i >= info.Length() || !info[i].IsBoolean()) fail(info.Env(), std::string(name) + ": expected a boolean");
  return info[i].As<Napi::Boolean>().Value();
}

// Whether optional argument i was passed (present and not undefined).
bool has_arg(const Napi::CallbackInfo& info, size_t i) { return i < info.Length() && !info[i].IsUndefined(); }

// An optional boolean argument (false when not passed).
bool optional_bool(const Napi::CallbackInfo& info, size_t i, const char* name) {
  return has_arg(info, i) && bool_arg(info, i, name);
}

// The dtype of a float buffer argument.
DType dtype_of(const Napi::CallbackInfo& info, size_t i, const char* name) {
  if (i < info.Length() && info[i].IsTypedArray()) {
    auto t = info[i].As<Napi::TypedArray>().TypedArrayType();
    if (t == napi_float32_array) return DType::F32;
    if (t == napi_float64_array) return DType::F64;
  }
  fail(info.Env(), std::string(name) + ": expected a Float32Array or Float64Array");
}

// A float buffer of dtype T with at least `need` elements.
template <class T>
T* buf(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need) {
  constexpr napi_typedarray_type want = sizeof(T) == 4 ? napi_float32_array : napi_float64_array;
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != want)
    fail(info.Env(), std::string(name) + (sizeof(T) == 4 ? ": expected a Float32Array" : ": expected a Float64Array") +
                         " (all float buffers of one call share a dtype)");
  auto a = info[i].As<Napi::TypedArray>();
  if (static_cast<int64_t>(a.ElementLength()) < need)
    fail(info.Env(), std::string(name) + ": has " + std::to_string(a.ElementLength()) + " elements, needs " +
                         std::to_string(need));
  return reinterpret_cast<T*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
}

// buf, or null when argument i is null (an output the caller does not want).
template <class T>
T* buf_or_null(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need) {
  return i < info.Length() && info[i].IsNull() ? nullptr : buf<T>(info, i, name, need);
}

uint16_t* u16buf(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need);
void* f32_or_bf16(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need, bool* is_bf16);

// True when argument i is a Uint16Array: a buffer of bf16 bit patterns.
bool is_bf16_arg(const Napi::CallbackInfo& info, size_t i) {
  return i < info.Length() && info[i].IsTypedArray() &&
         info[i].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array;
}

// An Int32Array of at least `need` elements whose values lie in [lo, hi).
const int32_t* ids(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need, int64_t lo,
                   int64_t hi) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array)
    fail(info.Env(), std::string(name) + ": expected an Int32Array");
  auto a = info[i].As<Napi::TypedArray>();
  if (static_cast<int64_t>(a.ElementLength()) < need)
    fail(info.Env(), std::string(name) + ": has " + std::to_string(a.ElementLength()) + " elements, needs " +
                         std::to_string(need));
  auto* p = reinterpret_cast<const int32_t*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
  for (int64_t k = 0; k < need; ++k)
    if (p[k] < lo || p[k] >= hi)
      fail(info.Env(), std::string(name) + "[" + std::to_string(k) + "] = " + std::to_string(p[k]) +
                           " is outside [" + std::to_string(lo) + ", " + std::to_string(hi) + ")");
  return p;
}

template <class T>
const KernelTable<T>& table();
template <>
const KernelTable<float>& table<float>() {
  return *ls::current_isa().f32;
}
template <>
const KernelTable<double>& table<double>() {
  return *ls::current_isa().f64;
}

// Calls Impl<float> or Impl<double> by the dtype of argument `first`.
// A kernel's own failure (out of memory for a workspace, say) becomes a JS Error.
template <template <class> class Impl>
Napi::Value by_dtype(const Napi::CallbackInfo& info, size_t first, const char* name, const char* fn) {
  try {
    return dtype_of(info, first, name) == DType::F32 ? Impl<float>::call(info) : Impl<double>::call(info);
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string(fn) + ": " + e.what());
  }
}

// Minimum element count of a row-major (rows, cols) matrix with leading dimension ld.
int64_t span(const Napi::CallbackInfo& info, const char* name, int64_t rows, int64_t cols, int64_t ld) {
  if (ld < cols) fail(info.Env(), std::string(name) + ": leading dimension " + std::to_string(ld) + " < " + std::to_string(cols));
  return rows == 0 || cols == 0 ? 0 : (rows - 1) * ld + cols;
}

// ---- memory, threads, dispatch ----------------------------------------------------------

Napi::Value Alloc(const Napi::CallbackInfo& info) {
  int64_t bytes = int_arg(info, 0, "bytes");
  void* p = ls::storage_alloc(static_cast<size_t>(bytes));
  return Napi::ArrayBuffer::New(info.Env(), p, static_cast<size_t>(bytes), [](Napi::Env, void* data, size_t* hint) {
    ls::storage_free(data, *hint);
    delete hint;
  }, new size_t(static_cast<size_t>(bytes)));
}

Napi::Value MemoryStats(const Napi::CallbackInfo& info) {
  auto s = ls::memory_stats();
  auto o = Napi::Object::New(info.Env());
  o.Set("storageBytes", Napi::Number::New(info.Env(), static_cast<double>(s.storage_bytes)));
  o.Set("storagePeakBytes", Napi::Number::New(info.Env(), static_cast<double>(s.storage_peak_bytes)));
  o.Set("workspaceBytes", Napi::Number::New(info.Env(), static_cast<double>(s.workspace_bytes)));
  return o;
}

Napi::Value ResetPeak(const Napi::CallbackInfo& info) {
  ls::memory_reset_peak();
  return info.Env().Undefined();
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  omp_set_num_threads(static_cast<int>(int_arg(info, 0, "threads", 1)));
  return info.Env().Undefined();
}

Napi::Value GetThreads(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), ls::current_isa().name); }

Napi::Value AvailableIsas(const Napi::CallbackInfo& info) {
  auto names = ls::available_isas();
  auto a = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); ++i) a.Set(static_cast<uint32_t>(i), names[i]);
  return a;
}

Napi::Value SetIsa(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) fail(info.Env(), "isa: expected a string");
  try {
    ls::set_isa(info[0].As<Napi::String>().Utf8Value());
  } catch (const std::invalid_argument& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
  return info.Env().Undefined();
}

Napi::Value CpuFeatures(const Napi::CallbackInfo& info) {
  auto f = ls::cpu_features();
  auto o = Napi::Object::New(info.Env());
  o.Set("avx2", f.avx2);
  o.Set("fma", f.fma);
  o.Set("avx512f", f.avx512f);
  o.Set("avx512bw", f.avx512bw);
  o.Set("avx512vl", f.avx512vl);
  o.Set("avx512dq", f.avx512dq);
  o.Set("avx512_bf16", f.avx512_bf16);
  o.Set("amx_tile", f.amx_tile);
  o.Set("amx_bf16", f.amx_bf16);
  o.Set("amd", f.amd);
  return o;
}

Napi::Value Bf16Units(const Napi::CallbackInfo& info) {
  auto names = ls::available_bf16_units();
  auto a = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); ++i) a.Set(static_cast<uint32_t>(i), names[i]);
  return a;
}

Napi::Value Bf16Unit(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ls::current_bf16_unit());
}

Napi::Value SetBf16Unit(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) fail(info.Env(), "unit: expected a string");
  try {
    ls::set_bf16_unit(info[0].As<Napi::String>().Utf8Value());
  } catch (const std::invalid_argument& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
  return info.Env().Undefined();
}

Napi::Value AmxUnavailableReason(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ls::amx_unavailable_reason());
}

// peakBf16(unit, threads, seconds): GFLOP/s of the unit's calibration loop ("fp32" is the fp32
// FMA loop of the current ISA: the fallback unit runs on it).
Napi::Value PeakBf16(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) fail(info.Env(), "unit: expected a string");
  const std::string unit = info[0].As<Napi::String>().Utf8Value();
  int threads = static_cast<int>(int_arg(info, 1, "threads", 1));
  double seconds = num_arg(info, 2, "seconds");
  bool ok = false;
  for (auto& u : ls::available_bf16_units()) ok = ok || u == unit;
  if (!ok) throw Napi::Error::New(info.Env(), "peakBf16: unit '" + unit + "' is not available on this machine");
  double g = unit == "amx"          ? ls::bf16::peak_amx_gflops(threads, seconds)
             : unit == "avx512bf16" ? ls::bf16::peak_dpbf16_gflops(threads, seconds)
                                    : ls::current_isa().peak_fma_gflops(threads, seconds);
  return Napi::Number::New(info.Env(), g);
}

// The current bf16 unit when it is a matrix unit; otherwise an error naming `fn` and the unit.
ls::bf16::Unit matrix_unit_for(const Napi::CallbackInfo& info, const char* fn) {
  int unit = 0;
  if (!ls::bf16_matrix_unit(&unit))
    throw Napi::Error::New(info.Env(), std::string(fn) + ": needs a bf16 matrix unit (amx or avx512bf16); the current one is '" +
                                           ls::current_bf16_unit() + "'");
  return static_cast<ls::bf16::Unit>(unit);
}

// f32_or_bf16, or null (with *is_bf16 false) when argument i is null.
void* f32_or_bf16_or_null(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need, bool* is_bf16) {
  *is_bf16 = false;
  return i < info.Length() && info[i].IsNull() ? nullptr : f32_or_bf16(info, i, name, need, is_bf16);
}

// gateUpSwiglu(act, gu, h, Wgu, N, C, F): the fused MLP's gate/up GEMM with SwiGLU in the
// epilogue (bf16/units.h) on the current bf16 unit, which must be a matrix unit. act (N, F) and
// gu (N, 2F) are outputs, either null; each buffer a Float32Array or a Uint16Array of bf16 bits.
Napi::Value GateUpSwiglu(const Napi::CallbackInfo& info) {
  const ls::bf16::Unit unit = matrix_unit_for(info, "gateUpSwiglu");
  const int64_t N = int_arg(info, 4, "N"), C = int_arg(info, 5, "C", 1), F = int_arg(info, 6, "F", 1);
  bool act_bf16 = false, gu_bf16 = false;
  void* act = f32_or_bf16_or_null(info, 0, "act", N * F, &act_bf16);
  void* gu = f32_or_bf16_or_null(info, 1, "gu", 2 * N * F, &gu_bf16);
  if (!act && !gu) fail(info.Env(), "gateUpSwiglu: act and gu are both null (nothing to write)");
  ls::bf16::Operand h, W;
  h.data = f32_or_bf16(info, 2, "h", N * C, &h.bf16);
  h.ld = C;
  W.data = f32_or_bf16(info, 3, "Wgu", 2 * F * C, &W.bf16);
  W.ld = C;
  try {
    ls::bf16::gate_up_swiglu(unit, N, C, F, h, W, act, act_bf16, gu, gu_bf16);
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("gateUpSwiglu: ") + e.what());
  }
  return info.Env().Undefined();
}

// swigluUnitBackward(dgu, act, dact, gu, N, F): gateUpSwiglu's backward pass on a matrix unit
// (bf16/units.h, swiglu_backward). dgu and gu share a dtype (fp32 or bf16 bits) and may be one
// buffer; act (or null) fp32 or bf16; dact a Float32Array.
Napi::Value SwigluUnitBackward(const Napi::CallbackInfo& info) {
  matrix_unit_for(info, "swigluUnitBackward");
  const int64_t N = int_arg(info, 4, "N"), F = int_arg(info, 5, "F", 1);
  bool dgu_bf16 = false, gu_bf16 = false, act_bf16 = false;
  void* dgu = f32_or_bf16(info, 0, "dgu", 2 * N * F, &dgu_bf16);
  void* act = f32_or_bf16_or_null(info, 1, "act", N * F, &act_bf16);
  const float* dact = buf<float>(info, 2, "dact", N * F);
  const void* gu = f32_or_bf16(info, 3, "gu", 2 * N * F, &gu_bf16);
  if (dgu_bf16 != gu_bf16) fail(info.Env(), "swigluUnitBackward: dgu and gu must share a dtype (both Float32Array or both Uint16Array)");
  ls::bf16::swiglu_backward(dgu, gu, gu_bf16, act, act_bf16, dact, N, F);
  return info.Env().Undefined();
}

Napi::Value PeakFma(const Napi::CallbackInfo& info) {
  int threads = static_cast<int>(int_arg(info, 0, "threads", 1));
  double seconds = num_arg(info, 1, "seconds");
  return Napi::Number::New(info.Env(), ls::current_isa().peak_fma_gflops(threads, seconds));
}

// memoryBandwidth(threads, seconds, bytesPerArray): best GB/s of the STREAM triad (kernels/bandwidth.cc).
Napi::Value MemoryBandwidth(const Napi::CallbackInfo& info) {
  int threads = static_cast<int>(int_arg(info, 0, "threads", 1));
  double seconds = num_arg(info, 1, "seconds");
  int64_t bytes = int_arg(info, 2, "bytesPerArray", 8192);
  try {
    return Napi::Number::New(info.Env(), ls::triad_gbps(threads, seconds, bytes));
  } catch (const std::bad_alloc&) {
    throw Napi::Error::New(info.Env(), "memoryBandwidth: cannot allocate 3 x " + std::to_string(bytes) + " bytes");
  }
}

Napi::Value LastLevelCacheBytes(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(ls::last_level_cache_bytes()));
}

// NVML (nvml.cc): nvmlOpen() -> '' or why not; nvmlDevices() -> names; nvmlEnergyMj() -> mJ summed.
Napi::Value NvmlOpen(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), ls::nvml::open());
}

Napi::Value NvmlDevices(const Napi::CallbackInfo& info) {
  auto names = ls::nvml::devices();
  Napi::Array a = Napi::Array::New(info.Env(), names.size());
  for (size_t i = 0; i < names.size(); i++) a.Set(static_cast<uint32_t>(i), Napi::String::New(info.Env(), names[i]));
  return a;
}

Napi::Value NvmlEnergyMj(const Napi::CallbackInfo& info) {
  try {
    return Napi::Number::New(info.Env(), ls::nvml::energy_mj());
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), e.what());
  }
}

// ---- kernels ------------------------------------------------------------------------------

// The GEMM that runs a bf16 product in dtype T: the current bf16 unit for float, the float64
// reference (bf16-rounded operands, double accumulation) for double.
template <class T>
ls::GemmFn<T> bf16_gemm_for();
template <>
ls::GemmFn<float> bf16_gemm_for<float>() {
  return ls::bf16_gemm();
}
template <>
ls::GemmFn<double> bf16_gemm_for<double>() {
  return table<double>().gemm_bf16;
}

// gemm / gemmBf16(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc)
template <class T>
Napi::Value gemm_call(const Napi::CallbackInfo& info, ls::GemmFn<T> fn) {
  bool ta = bool_arg(info, 0, "transA"), tb = bool_arg(info, 1, "transB");
  int64_t M = int_arg(info, 2, "M"), N = int_arg(info, 3, "N"), K = int_arg(info, 4, "K");
  T alpha = static_cast<T>(num_arg(info, 5, "alpha"));
  int64_t lda = int_arg(info, 7, "lda", 1), ldb = int_arg(info, 9, "ldb", 1), ldc = int_arg(info, 12, "ldc", 1);
  T beta = static_cast<T>(num_arg(info, 10, "beta"));
  const T* A = buf<T>(info, 6, "A", ta ? span(info, "A", K, M, lda) : span(info, "A", M, K, lda));
  const T* B = buf<T>(info, 8, "B", tb ? span(info, "B", N, K, ldb) : span(info, "B", K, N, ldb));
  T* C = buf<T>(info, 11, "C", span(info, "C", M, N, ldc));
  fn(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
  return info.Env().Undefined();
}

template <class T>
struct Gemm {
  static Napi::Value call(const Napi::CallbackInfo& info) { return gemm_call<T>(info, table<T>().gemm); }
};

template <class T>
struct GemmBf16 {
  static Napi::Value call(const Napi::CallbackInfo& info) { return gemm_call<T>(info, bf16_gemm_for<T>()); }
};

// A Uint16Array (bf16 bit patterns) of at least `need` elements.
uint16_t* u16buf(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need) {
  if (i >= info.Length() || !info[i].IsTypedArray() ||
      info[i].As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array)
    fail(info.Env(), std::string(name) + ": expected a Uint16Array (bf16 bits)");
  auto a = info[i].As<Napi::TypedArray>();
  if (static_cast<int64_t>(a.ElementLength()) < need)
    fail(info.Env(), std::string(name) + ": has " + std::to_string(a.ElementLength()) + " elements, needs " +
                         std::to_string(need));
  return reinterpret_cast<uint16_t*>(static_cast<uint8_t*>(a.ArrayBuffer().Data()) + a.ByteOffset());
}

// A matrix argument that is a Float32Array (fp32) or a Uint16Array (bf16 bits).
void* f32_or_bf16(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need, bool* is_bf16) {
  if (i < info.Length() && info[i].IsTypedArray() &&
      info[i].As<Napi::TypedArray>().TypedArrayType() == napi_uint16_array) {
    *is_bf16 = true;
    return u16buf(info, i, name, need);
  }
  *is_bf16 = false;
  return buf<float>(info, i, name, need);
}

// The arguments of a matrix unit's GEMM: (transA, transB, M, N, K, alpha, A, lda, B, ldb) from
// argument `at` on, then `gap` arguments the caller reads itself, then (beta, C, ldc); A, B and C
// each a Float32Array or a Uint16Array of bf16 bits.
struct UnitGemm {
  int64_t M, N, K, ldc;
  float alpha, beta;
  ls::bf16::Operand A, B;
  void* C;
  bool c_bf16;
};

UnitGemm unit_gemm_args(const Napi::CallbackInfo& info, size_t at, size_t gap) {
  UnitGemm g{};
  const bool ta = bool_arg(info, at, "transA"), tb = bool_arg(info, at + 1, "transB");
  g.M = int_arg(info, at + 2, "M"), g.N = int_arg(info, at + 3, "N"), g.K = int_arg(info, at + 4, "K");
  g.alpha = static_cast<float>(num_arg(info, at + 5, "alpha"));
  const size_t tail = at + 10 + gap;  // beta, C, ldc
  const int64_t lda = int_arg(info, at + 7, "lda", 1), ldb = int_arg(info, at + 9, "ldb", 1);
  g.ldc = int_arg(info, tail + 2, "ldc", 1);
  g.beta = static_cast<float>(num_arg(info, tail, "beta"));
  g.A.data = f32_or_bf16(info, at + 6, "A", ta ? span(info, "A", g.K, g.M, lda) : span(info, "A", g.M, g.K, lda), &g.A.bf16);
  g.A.ld = lda, g.A.trans = ta;
  g.B.data = f32_or_bf16(info, at + 8, "B", tb ? span(info, "B", g.N, g.K, ldb) : span(info, "B", g.K, g.N, ldb), &g.B.bf16);
  g.B.ld = ldb, g.B.trans = tb;
  g.C = f32_or_bf16(info, tail + 1, "C", span(info, "C", g.M, g.N, g.ldc), &g.c_bf16);
  return g;
}

// gemmBf16(transA, transB, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc): Float32Array or
// Float64Array buffers as gemm_call; on a matrix unit A, B and C may also be Uint16Arrays of
// bf16 bits (a bf16 C is rounded once and needs beta 0): the operands bf16 training keeps in bf16
// (the weights' working copy, norm outputs, the SwiGLU activation, dgu, dqkv) are read as they
// are. The product is the same as with the fp32 values of those bits.
Napi::Value GemmBf16Any(const Napi::CallbackInfo& info) {
  if (!is_bf16_arg(info, 6) && !is_bf16_arg(info, 8) && !is_bf16_arg(info, 11))
    return by_dtype<GemmBf16>(info, 6, "A", "gemmBf16");
  int unit = 0;
  if (!ls::bf16_matrix_unit(&unit))
    throw Napi::Error::New(info.Env(), "gemmBf16: bf16 (Uint16Array) operands need a bf16 matrix unit (amx or avx512bf16); "
                                       "the current one is '" + ls::current_bf16_unit() + "'");
  const UnitGemm g = unit_gemm_args(info, 0, 0);
  try {
    ls::bf16::gemm(static_cast<ls::bf16::Unit>(unit), g.M, g.N, g.K, g.alpha, g.A, g.B, g.beta, g.C, g.ldc, g.c_bf16);
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("gemmBf16: ") + e.what());
  }
  return info.Env().Undefined();
}

// q, k or v of flash attention on a matrix unit: all three fp32 or all three bf16 bits. *kind: -1
// before the first, then 0 (fp32) or 1 (bf16).
const void* qkv_operand(const Napi::CallbackInfo& info, size_t i, const char* name, int64_t need, int* kind) {
  bool b = false;
  const void* p = f32_or_bf16(info, i, name, need, &b);
  if (*kind >= 0 && *kind != static_cast<int>(b))
    fail(info.Env(), std::string(name) + ": q, k and v must all be Float32Arrays or all Uint16Arrays (bf16 bits)");
  *kind = static_cast<int>(b);
  return p;
}

// bf16 q, k, v (arguments first..first+2) outside a matrix unit's kernel: a clear refusal.
void refuse_bf16_qkv(const Napi::CallbackInfo& info, size_t first) {
  for (size_t i = first; i < first + 3; ++i)
    if (is_bf16_arg(info, i))
      fail(info.Env(), "q, k, v: bf16 (Uint16Array) operands need bf16 = true and a bf16 matrix unit (amx or avx512bf16); "
                       "the current unit is '" + ls::current_bf16_unit() + "'");
}

// A bf16 attention output (argument i) outside a matrix unit's kernel: a clear refusal.
void refuse_bf16_out(const Napi::CallbackInfo& info, size_t i) {
  if (is_bf16_arg(info, i))
    fail(info.Env(), "out: a bf16 (Uint16Array) attention output needs bf16 = true and a bf16 matrix unit (amx or "
                     "avx512bf16); the current unit is '" + ls::current_bf16_unit() + "'");
}

// bf16GemmEx(unit, transA, transB, M, N, K, alpha, A, lda, B, ldb, prepackB, beta, C, ldc): the
// matrix units' general GEMM (bf16/units.h) for tests and benchmarks: A, B and C each a
// Float32Array or a Uint16Array of bf16 bits; prepackB packs op(B) whole first (pack_b).
Napi::Value Bf16GemmEx(const Napi::CallbackInfo& info) {
  if (info.Length() < 1 || !info[0].IsString()) fail(info.Env(), "unit: expected a string");
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  if (name != "amx" && name != "avx512bf16") fail(info.Env(), "unit: expected 'amx' or 'avx512bf16'");
  bool ok = false;
  for (auto& u : ls::available_bf16_units()) ok = ok || u == name;
  if (!ok) throw Napi::Error::New(info.Env(), "bf16GemmEx: unit '" + name + "' is not available on this machine");
  UnitGemm g = unit_gemm_args(info, 1, 1);
  const bool prepack = bool_arg(info, 11, "prepackB");
  const int64_t M = g.M, N = g.N, K = g.K;
  ls::bf16::Operand& B = g.B;
  const ls::bf16::Unit unit = name == "amx" ? ls::bf16::Unit::amx : ls::bf16::Unit::dpbf16;
  try {
    std::vector<uint16_t> packed;
    if (prepack) {
      packed.resize(static_cast<size_t>(ls::bf16::packed_b_size(K, N)) + 32);
      // 64-byte alignment for the tile loads.
      uint16_t* p = packed.data();
      p += (64 - reinterpret_cast<uintptr_t>(p) % 64) % 64 / 2;
      ls::bf16::pack_b(p, B, K, N);
      B = ls::bf16::Operand{};
      B.packed = p;
    }
    ls::bf16::gemm(unit, M, N, K, g.alpha, g.A, B, g.beta, g.C, g.ldc, g.c_bf16);
  } catch (const std::exception& e) {
    throw Napi::Error::New(info.Env(), std::string("bf16GemmEx: ") + e.what());
  }
  return info.Env().Undefined();
}


template <class T>
struct CastToBf16 {
  // castToBf16(y: Uint16Array, x, n)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t n = int_arg(info, 2, "n");
    table<T>().cast_to_bf16(u16buf(info, 0, "y", n), buf<T>(info, 1, "x", n), n);
    return info.Env().Undefined();
  }
};

template <class T>
struct CastFromBf16 {
  // castFromBf16(y, x: Uint16Array, n)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t n = int_arg(info, 2, "n");
    table<T>().cast_from_bf16(buf<T>(info, 0, "y", n), u16buf(info, 1, "x", n), n);
    return info.Env().Undefined();
  }
};

// castFromF16(y: Float32Array, x: Uint16Array, n): fp16 bits widened to fp32 (kernels/f16.h) on
// the current ISA's path; the avx2 path needs F16C, so a CPU without it takes the scalar one.
Napi::Value CastFromF16(const Napi::CallbackInfo& info) {
  int64_t n = int_arg(info, 2, "n");
  float* y = buf<float>(info, 0, "y", n);
  const uint16_t* x = u16buf(info, 1, "x", n);
  static const bool f16c = [] {
    unsigned eax, ebx, ecx, edx;
    return __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
  }();
  const std::string isa = ls::current_isa().name;
  if (isa == "avx512") ls::avx512::cast_from_f16(y, x, n);
  else if (isa == "avx2" && f16c) ls::avx2::cast_from_f16(y, x, n);
  else ls::scalar::cast_from_f16(y, x, n);
  return info.Env().Undefined();
}

template <class T>
struct EmbeddingForward {
  // embeddingForward(out, ids, table, N, C, V)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t N = int_arg(info, 3, "N"), C = int_arg(info, 4, "C"), V = int_arg(info, 5, "V", 1);
    T* out = buf<T>(info, 0, "out", N * C);
    const int32_t* id = ids(info, 1, "ids", N, 0, V);
    const T* tab = buf<T>(info, 2, "table", V * C);
    table<T>().embedding_forward(out, id, tab, N, C);
    return info.Env().Undefined();
  }
};

template <class T>
struct EmbeddingBackward {
  // embeddingBackward(dtable, dout, ids, N, C, V)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t N = int_arg(info, 3, "N"), C = int_arg(info, 4, "C"), V = int_arg(info, 5, "V", 1);
    T* dtab = buf<T>(info, 0, "dtable", V * C);
    const T* dout = buf<T>(info, 1, "dout", N * C);
    const int32_t* id = ids(info, 2, "ids", N, 0, V);
    table<T>().embedding_backward(dtab, dout, id, N, C, V);
    return info.Env().Undefined();
  }
};

template <class T>
struct RmsnormForward {
  // rmsnormForward(out, rstd, x, w, N, C, eps)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t N = int_arg(info, 4, "N"), C = int_arg(info, 5, "C", 1);
    T eps = static_cast<T>(num_arg(info, 6, "eps"));
    if (is_bf16_arg(info, 0))  // out kept in bf16 (a GEMM operand of bf16 training)
      table<T>().rmsnorm_forward_bf16(u16buf(info, 0, "out", N * C), buf<T>(info, 1, "rstd", N), buf<T>(info, 2, "x", N * C),
                                      buf<T>(info, 3, "w", C), N, C, eps);
    else
      table<T>().rmsnorm_forward(buf<T>(info, 0, "out", N * C), buf<T>(info, 1, "rstd", N), buf<T>(info, 2, "x", N * C),
                                 buf<T>(info, 3, "w", C), N, C, eps);
    return info.Env().Undefined();
  }
};

template <class T>
struct RmsnormBackward {
  // rmsnormBackward(dx, dw, dout, x, w, rstd, N, C, dxBf16?): dxBf16, a Uint16Array, also
  // receives the updated dx rounded to bf16 (the next backward GEMMs' operand in bf16 training).
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t N = int_arg(info, 6, "N"), C = int_arg(info, 7, "C", 1);
    if (has_arg(info, 8)) {
      table<T>().rmsnorm_backward_bf16(buf<T>(info, 0, "dx", N * C), u16buf(info, 8, "dxBf16", N * C), buf<T>(info, 1, "dw", C),
                                       buf<T>(info, 2, "dout", N * C), buf<T>(info, 3, "x", N * C), buf<T>(info, 4, "w", C),
                                       buf<T>(info, 5, "rstd", N), N, C);
      return info.Env().Undefined();
    }
    table<T>().rmsnorm_backward(buf<T>(info, 0, "dx", N * C), buf<T>(info, 1, "dw", C), buf<T>(info, 2, "dout", N * C),
                                buf<T>(info, 3, "x", N * C), buf<T>(info, 4, "w", C), buf<T>(info, 5, "rstd", N), N, C);
    return info.Env().Undefined();
  }
};

void check_even(const Napi::CallbackInfo& info, int64_t D) {
  if (D % 2 != 0) fail(info.Env(), "D: head dim must be even for rotary embeddings, got " + std::to_string(D));
}

template <class T>
struct RopeTable {
  // ropeTable(cos, sin, T, D, theta)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t Tn = int_arg(info, 2, "T"), D = int_arg(info, 3, "D", 2);
    check_even(info, D);
    double theta = num_arg(info, 4, "theta");
    table<T>().rope_table(buf<T>(info, 0, "cos", Tn * D / 2), buf<T>(info, 1, "sin", Tn * D / 2), Tn, D, theta);
    return info.Env().Undefined();
  }
};

template <class T>
struct RopeApply {
  // ropeApply(x, cos, sin, B, T, H, D, inverse)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t B = int_arg(info, 3, "B"), Tn = int_arg(info, 4, "T"), H = int_arg(info, 5, "H"), D = int_arg(info, 6, "D", 2);
    check_even(info, D);
    bool inv = bool_arg(info, 7, "inverse");
    table<T>().rope_apply(buf<T>(info, 0, "x", B * Tn * H * D), buf<T>(info, 1, "cos", Tn * D / 2),
                          buf<T>(info, 2, "sin", Tn * D / 2), B, Tn, H, D, inv);
    return info.Env().Undefined();
  }
};

void check_gqa(const Napi::CallbackInfo& info, int64_t H, int64_t KVH) {
  if (H % KVH != 0) fail(info.Env(), "H: query heads (" + std::to_string(H) + ") must be a multiple of KVH (" + std::to_string(KVH) + ")");
}

template <class T>
struct AttentionStandardForward {
  // attentionStandardForward(out, probs, q, k, v, B, T, H, KVH, D)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t B = int_arg(info, 5, "B"), Tn = int_arg(info, 6, "T"), H = int_arg(info, 7, "H", 1),
            KVH = int_arg(info, 8, "KVH", 1), D = int_arg(info, 9, "D", 1);
    check_gqa(info, H, KVH);
    table<T>().attention_standard_forward(buf<T>(info, 0, "out", B * Tn * H * D), buf<T>(info, 1, "probs", B * H * Tn * Tn),
                                          buf<T>(info, 2, "q", B * Tn * H * D), buf<T>(info, 3, "k", B * Tn * KVH * D),
                                          buf<T>(info, 4, "v", B * Tn * KVH * D), B, Tn, H, KVH, D);
    return info.Env().Undefined();
  }
};

template <class T>
struct AttentionStandardBackward {
  // attentionStandardBackward(dq, dk, dv, dout, q, k, v, probs, B, T, H, KVH, D)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t B = int_arg(info, 8, "B"), Tn = int_arg(info, 9, "T"), H = int_arg(info, 10, "H", 1),
            KVH = int_arg(info, 11, "KVH", 1), D = int_arg(info, 12, "D", 1);
    check_gqa(info, H, KVH);
    int64_t nq = B * Tn * H * D, nkv = B * Tn * KVH * D;
    table<T>().attention_standard_backward(buf<T>(info, 0, "dq", nq), buf<T>(info, 1, "dk", nkv), buf<T>(info, 2, "dv", nkv),
                                           buf<T>(info, 3, "dout", nq), buf<T>(info, 4, "q", nq), buf<T>(info, 5, "k", nkv),
                                           buf<T>(info, 6, "v", nkv), buf<T>(info, 7, "probs", B * H * Tn * Tn), B, Tn, H,
                                           KVH, D);
    return info.Env().Undefined();
  }
};

template <class T>
struct AttentionFlashForward {
  // attentionFlashForward(out, lse, q, k, v, B, T, H, KVH, D, bf16?)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t B = int_arg(info, 5, "B"), Tn = int_arg(info, 6, "T"), H = int_arg(info, 7, "H", 1),
            KVH = int_arg(info, 8, "KVH", 1), D = int_arg(info, 9, "D", 1);
    check_gqa(info, H, KVH);
    int64_t nq = B * Tn * H * D, nkv = B * Tn * KVH * D;
    const bool bf16 = optional_bool(info, 10, "bf16");
    int unit = 0;
    if constexpr (std::is_same<T, float>::value) {
      if (bf16 && ls::bf16_matrix_unit(&unit)) {
        int kind = -1;
        const void* q = qkv_operand(info, 2, "q", nq, &kind);
        const void* k = qkv_operand(info, 3, "k", nkv, &kind);
        const void* v = qkv_operand(info, 4, "v", nkv, &kind);
        bool out_bf16 = false;
        void* out = f32_or_bf16(info, 0, "out", nq, &out_bf16);
        ls::bf16::attention_flash_forward(static_cast<ls::bf16::Unit>(unit), out, out_bf16,
                                          buf<T>(info, 1, "lse", B * H * Tn), q, k, v, kind == 1, B, Tn, H, KVH, D);
        return info.Env().Undefined();
      }
    }
    refuse_bf16_out(info, 0);
    refuse_bf16_qkv(info, 2);
    table<T>().attention_flash_forward(buf<T>(info, 0, "out", nq), buf<T>(info, 1, "lse", B * H * Tn), buf<T>(info, 2, "q", nq),
                                       buf<T>(info, 3, "k", nkv), buf<T>(info, 4, "v", nkv), B, Tn, H, KVH, D);
    return info.Env().Undefined();
  }
};

template <class T>
struct AttentionFlashBackward {
  // attentionFlashBackward(dq, dk, dv, dout, q, k, v, out, lse, B, T, H, KVH, D, bf16?)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t B = int_arg(info, 9, "B"), Tn = int_arg(info, 10, "T"), H = int_arg(info, 11, "H", 1),
            KVH = int_arg(info, 12, "KVH", 1), D = int_arg(info, 13, "D", 1);
    check_gqa(info, H, KVH);
    int64_t nq = B * Tn * H * D, nkv = B * Tn * KVH * D;
    const bool bf16 = optional_bool(info, 14, "bf16");
    int unit = 0;
    if constexpr (std::is_same<T, float>::value) {
      if (bf16 && ls::bf16_matrix_unit(&unit)) {
        int kind = -1;
        const void* q = qkv_operand(info, 4, "q", nq, &kind);
        const void* k = qkv_operand(info, 5, "k", nkv, &kind);
        const void* v = qkv_operand(info, 6, "v", nkv, &kind);
        bool out_bf16 = false;
        const void* out = f32_or_bf16(info, 7, "out", nq, &out_bf16);
        ls::bf16::attention_flash_backward(
            static_cast<ls::bf16::Unit>(unit), buf<T>(info, 0, "dq", nq), buf<T>(info, 1, "dk", nkv),
            buf<T>(info, 2, "dv", nkv), buf<T>(info, 3, "dout", nq), q, k, v, kind == 1, out, out_bf16,
            buf<T>(info, 8, "lse", B * H * Tn), B, Tn, H, KVH, D);
        return info.Env().Undefined();
      }
    }
    refuse_bf16_out(info, 7);
    refuse_bf16_qkv(info, 4);
    table<T>().attention_flash_backward(buf<T>(info, 0, "dq", nq), buf<T>(info, 1, "dk", nkv), buf<T>(info, 2, "dv", nkv),
                                        buf<T>(info, 3, "dout", nq), buf<T>(info, 4, "q", nq), buf<T>(info, 5, "k", nkv),
                                        buf<T>(info, 6, "v", nkv), buf<T>(info, 7, "out", nq), buf<T>(info, 8, "lse", B * H * Tn),
                                        B, Tn, H, KVH, D);
    return info.Env().Undefined();
  }
};

template <class T>
struct LinearCrossEntropy {
  // linearCrossEntropy(dx | null, dW | null, lse, x, W, targets, N, C, V, dloss, bf16?) -> summed loss
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t N = int_arg(info, 6, "N"), C = int_arg(info, 7, "C", 1), V = int_arg(info, 8, "V", 1);
    T dloss = static_cast<T>(num_arg(info, 9, "dloss"));
    bool grads = !info[0].IsNull();
    if (grads == info[1].IsNull()) fail(info.Env(), "dx and dW: pass both (training) or both null (evaluation)");
    T* dx = grads ? buf<T>(info, 0, "dx", N * C) : nullptr;
    T* dW = grads ? buf<T>(info, 1, "dW", V * C) : nullptr;
    const int32_t* tg = ids(info, 5, "targets", N, -1, V);
    const bool bf16 = optional_bool(info, 10, "bf16");
    int unit = 0;
    if constexpr (std::is_same<T, float>::value) {
      if (bf16 && ls::bf16_matrix_unit(&unit)) {  // x and W may be bf16 bits (Uint16Array) here
        ls::bf16::Operand x, W;
        x.data = f32_or_bf16(info, 3, "x", N * C, &x.bf16);
        W.data = f32_or_bf16(info, 4, "W", V * C, &W.bf16);
        x.ld = W.ld = C;
        double s = ls::bf16::linear_cross_entropy(static_cast<ls::bf16::Unit>(unit), dx, dW, buf<T>(info, 2, "lse", N), x,
                                                  W, tg, N, C, V, dloss);
        return Napi::Number::New(info.Env(), s);
      }
    }
    if (is_bf16_arg(info, 3) || is_bf16_arg(info, 4))
      fail(info.Env(), "x, W: bf16 (Uint16Array) operands need bf16 = true and a bf16 matrix unit (amx or avx512bf16); "
                       "the current unit is '" + ls::current_bf16_unit() + "'");
    double s = table<T>().linear_cross_entropy(dx, dW, buf<T>(info, 2, "lse", N), buf<T>(info, 3, "x", N * C),
                                               buf<T>(info, 4, "W", V * C), tg, N, C, V, dloss,
                                               bf16 ? bf16_gemm_for<T>() : nullptr);
    return Napi::Number::New(info.Env(), s);
  }
};

template <class T>
struct AddRmsnormForward {
  // addRmsnormForward(resid, out, rstd, x, y, w, N, C, eps)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t N = int_arg(info, 6, "N"), C = int_arg(info, 7, "C", 1);
    T eps = static_cast<T>(num_arg(info, 8, "eps"));
    if (is_bf16_arg(info, 1))  // out kept in bf16
      table<T>().add_rmsnorm_forward_bf16(buf<T>(info, 0, "resid", N * C), u16buf(info, 1, "out", N * C),
                                          buf<T>(info, 2, "rstd", N), buf<T>(info, 3, "x", N * C), buf<T>(info, 4, "y", N * C),
                                          buf<T>(info, 5, "w", C), N, C, eps);
    else
      table<T>().add_rmsnorm_forward(buf<T>(info, 0, "resid", N * C), buf<T>(info, 1, "out", N * C), buf<T>(info, 2, "rstd", N),
                                     buf<T>(info, 3, "x", N * C), buf<T>(info, 4, "y", N * C), buf<T>(info, 5, "w", C), N, C, eps);
    return info.Env().Undefined();
  }
};

template <class T>
struct RopeQkvSplit {
  // ropeQkvSplit(q, k, v, qkv, cos, sin, B, T, H, KVH, D)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t B = int_arg(info, 6, "B"), Tn = int_arg(info, 7, "T"), H = int_arg(info, 8, "H", 1),
            KVH = int_arg(info, 9, "KVH", 1), D = int_arg(info, 10, "D", 2);
    check_even(info, D);
    int64_t nq = B * Tn * H * D, nkv = B * Tn * KVH * D;
    if (is_bf16_arg(info, 0))  // q, k, v in bf16 (all three): flash attention's operands in bf16 training
      table<T>().rope_qkv_split_bf16(u16buf(info, 0, "q", nq), u16buf(info, 1, "k", nkv), u16buf(info, 2, "v", nkv),
                                     buf<T>(info, 3, "qkv", nq + 2 * nkv), buf<T>(info, 4, "cos", Tn * D / 2),
                                     buf<T>(info, 5, "sin", Tn * D / 2), B, Tn, H, KVH, D);
    else
      table<T>().rope_qkv_split(buf<T>(info, 0, "q", nq), buf<T>(info, 1, "k", nkv), buf<T>(info, 2, "v", nkv),
                                buf<T>(info, 3, "qkv", nq + 2 * nkv), buf<T>(info, 4, "cos", Tn * D / 2),
                                buf<T>(info, 5, "sin", Tn * D / 2), B, Tn, H, KVH, D);
    return info.Env().Undefined();
  }
};

template <class T>
struct GemmQkvRope {
  // gemmQkvRope(q, k, v, x, Wqkv, cos, sin, B, T, C, H, KVH, D, bf16?): the QKV projection with
  // RoPE and the split in its epilogue (fp32 GEMM: the fp32 path and the fp32 unit of bf16).
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t B = int_arg(info, 7, "B"), Tn = int_arg(info, 8, "T"), C = int_arg(info, 9, "C"), H = int_arg(info, 10, "H", 1),
            KVH = int_arg(info, 11, "KVH", 1), D = int_arg(info, 12, "D", 2);
    check_even(info, D);
    check_gqa(info, H, KVH);
    const bool bf16 = optional_bool(info, 13, "bf16");
    int64_t nq = B * Tn * H * D, nkv = B * Tn * KVH * D;
    table<T>().gemm_qkv_rope(buf<T>(info, 0, "q", nq), buf<T>(info, 1, "k", nkv), buf<T>(info, 2, "v", nkv),
                             buf<T>(info, 3, "x", B * Tn * C), buf<T>(info, 4, "Wqkv", (H + 2 * KVH) * D * C),
                             buf<T>(info, 5, "cos", Tn * D / 2), buf<T>(info, 6, "sin", Tn * D / 2), B, Tn, C, H, KVH, D,
                             bf16);
    return info.Env().Undefined();
  }
};

template <class T>
struct GemmSwiglu {
  // gemmSwiglu(act, gu, x, Wgu, N, C, F, bf16?): the gate/up projection with SwiGLU in its
  // epilogue (fp32 GEMM; bf16 on a matrix unit is gateUpSwiglu): act (N, F) and / or gu (N, 2F),
  // either null.
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t N = int_arg(info, 4, "N"), C = int_arg(info, 5, "C"), F = int_arg(info, 6, "F");
    const bool bf16 = optional_bool(info, 7, "bf16");
    T* act = buf_or_null<T>(info, 0, "act", N * F);
    T* gu = buf_or_null<T>(info, 1, "gu", 2 * N * F);
    if (!act && !gu) fail(info.Env(), "gemmSwiglu: act and gu are both null (nothing to write)");
    table<T>().gemm_swiglu(act, gu, buf<T>(info, 2, "x", N * C), buf<T>(info, 3, "Wgu", 2 * F * C), N, C, F, bf16);
    return info.Env().Undefined();
  }
};

template <class T>
struct RopeQkvMerge {
  // ropeQkvMerge(dqkv, dq, dk, dv, cos, sin, B, T, H, KVH, D)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t B = int_arg(info, 6, "B"), Tn = int_arg(info, 7, "T"), H = int_arg(info, 8, "H", 1),
            KVH = int_arg(info, 9, "KVH", 1), D = int_arg(info, 10, "D", 2);
    check_even(info, D);
    int64_t nq = B * Tn * H * D, nkv = B * Tn * KVH * D;
    if (is_bf16_arg(info, 0))  // dqkv in bf16: the backward GEMMs' operand
      table<T>().rope_qkv_merge_bf16(u16buf(info, 0, "dqkv", nq + 2 * nkv), buf<T>(info, 1, "dq", nq),
                                     buf<T>(info, 2, "dk", nkv), buf<T>(info, 3, "dv", nkv),
                                     buf<T>(info, 4, "cos", Tn * D / 2), buf<T>(info, 5, "sin", Tn * D / 2), B, Tn, H, KVH, D);
    else
      table<T>().rope_qkv_merge(buf<T>(info, 0, "dqkv", nq + 2 * nkv), buf<T>(info, 1, "dq", nq), buf<T>(info, 2, "dk", nkv),
                                buf<T>(info, 3, "dv", nkv), buf<T>(info, 4, "cos", Tn * D / 2),
                                buf<T>(info, 5, "sin", Tn * D / 2), B, Tn, H, KVH, D);
    return info.Env().Undefined();
  }
};

template <class T>
struct SwigluPackedForward {
  // swigluPackedForward(out, gu, N, F)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t N = int_arg(info, 2, "N"), F = int_arg(info, 3, "F");
    table<T>().swiglu_packed_forward(buf<T>(info, 0, "out", N * F), buf<T>(info, 1, "gu", 2 * N * F), N, F);
    return info.Env().Undefined();
  }
};

template <class T>
struct SwigluPackedBackward {
  // swigluPackedBackward(dgu, act, dout, gu, N, F): dgu may be gu; act (or null) receives silu(gate) * up
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t N = int_arg(info, 4, "N"), F = int_arg(info, 5, "F");
    table<T>().swiglu_packed_backward(buf<T>(info, 0, "dgu", 2 * N * F), buf_or_null<T>(info, 1, "act", N * F),
                                      buf<T>(info, 2, "dout", N * F), buf<T>(info, 3, "gu", 2 * N * F), N, F);
    return info.Env().Undefined();
  }
};

template <class T>
struct SwigluForward {
  // swigluForward(out, gate, up, n)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t n = int_arg(info, 3, "n");
    table<T>().swiglu_forward(buf<T>(info, 0, "out", n), buf<T>(info, 1, "gate", n), buf<T>(info, 2, "up", n), n);
    return info.Env().Undefined();
  }
};

template <class T>
struct SwigluBackward {
  // swigluBackward(dgate, dup, dout, gate, up, n)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t n = int_arg(info, 5, "n");
    table<T>().swiglu_backward(buf<T>(info, 0, "dgate", n), buf<T>(info, 1, "dup", n), buf<T>(info, 2, "dout", n),
                               buf<T>(info, 3, "gate", n), buf<T>(info, 4, "up", n), n);
    return info.Env().Undefined();
  }
};

template <class T>
struct CrossEntropyForward {
  // crossEntropyForward(lse, logits, targets, N, V) -> sum of losses over rows with target >= 0
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t N = int_arg(info, 3, "N"), V = int_arg(info, 4, "V", 1);
    const int32_t* tg = ids(info, 2, "targets", N, -1, V);
    double s = table<T>().cross_entropy_forward(buf<T>(info, 0, "lse", N), buf<T>(info, 1, "logits", N * V), tg, N, V);
    return Napi::Number::New(info.Env(), s);
  }
};

template <class T>
struct CrossEntropyBackward {
  // crossEntropyBackward(dlogits, logits, lse, targets, N, V, dloss)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t N = int_arg(info, 4, "N"), V = int_arg(info, 5, "V", 1);
    T dloss = static_cast<T>(num_arg(info, 6, "dloss"));
    const int32_t* tg = ids(info, 3, "targets", N, -1, V);
    table<T>().cross_entropy_backward(buf<T>(info, 0, "dlogits", N * V), buf<T>(info, 1, "logits", N * V),
                                      buf<T>(info, 2, "lse", N), tg, N, V, dloss);
    return info.Env().Undefined();
  }
};

template <class T>
struct AdamW {
  // adamw(p, g, m, v, n, lr, beta1, beta2, eps, wd, step, gscale, pBf16?): pBf16, a Uint16Array,
  // also receives the updated p rounded to bf16 (the working copy of bf16 training).
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t n = int_arg(info, 4, "n");
    double lr = num_arg(info, 5, "lr"), b1 = num_arg(info, 6, "beta1"), b2 = num_arg(info, 7, "beta2"),
           eps = num_arg(info, 8, "eps"), wd = num_arg(info, 9, "wd");
    int64_t step = int_arg(info, 10, "step", 1);
    double gs = num_arg(info, 11, "gscale");
    uint16_t* pb = has_arg(info, 12) ? u16buf(info, 12, "pBf16", n) : nullptr;
    table<T>().adamw(buf<T>(info, 0, "p", n), buf<T>(info, 1, "g", n), buf<T>(info, 2, "m", n), buf<T>(info, 3, "v", n), pb,
                     n, lr, b1, b2, eps, wd, step, gs);
    return info.Env().Undefined();
  }
};

template <class T>
struct SumSquares {
  // sumSquares(x, n) -> number
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t n = int_arg(info, 1, "n");
    return Napi::Number::New(info.Env(), table<T>().sum_squares(buf<T>(info, 0, "x", n), n));
  }
};

template <class T>
struct AddInplace {
  // addInplace(y, x, n): y += x
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t n = int_arg(info, 2, "n");
    table<T>().add_inplace(buf<T>(info, 0, "y", n), buf<T>(info, 1, "x", n), n);
    return info.Env().Undefined();
  }
};

template <class T>
struct ScaleInplace {
  // scaleInplace(y, s, n): y *= s
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t n = int_arg(info, 2, "n");
    table<T>().scale_inplace(buf<T>(info, 0, "y", n), static_cast<T>(num_arg(info, 1, "s")), n);
    return info.Env().Undefined();
  }
};

template <class T>
struct Fill {
  // fill(y, value, n)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t n = int_arg(info, 2, "n");
    table<T>().fill(buf<T>(info, 0, "y", n), static_cast<T>(num_arg(info, 1, "value")), n);
    return info.Env().Undefined();
  }
};

template <class T>
struct Randn {
  // randn(y, n, seed, mean, std); seed is an integer in [0, 2^53)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t n = int_arg(info, 1, "n");
    uint64_t seed = static_cast<uint64_t>(int_arg(info, 2, "seed"));
    table<T>().randn(buf<T>(info, 0, "y", n), n, seed, static_cast<T>(num_arg(info, 3, "mean")),
                     static_cast<T>(num_arg(info, 4, "std")));
    return info.Env().Undefined();
  }
};

// ---- decoding with a KV cache --------------------------------------------------------------

template <class T>
struct Gemv {
  // gemv(y, W, x, N, K, beta)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t N = int_arg(info, 3, "N"), K = int_arg(info, 4, "K");
    table<T>().gemv(buf<T>(info, 0, "y", N), buf<T>(info, 1, "W", N * K), buf<T>(info, 2, "x", K), N, K,
                    static_cast<T>(num_arg(info, 5, "beta")));
    return info.Env().Undefined();
  }
};

template <class T>
struct RopeQkvDecode {
  // ropeQkvDecode(q, kcache, vcache, qkv, cos, sin, pos, H, KVH, D)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t pos = int_arg(info, 6, "pos"), H = int_arg(info, 7, "H", 1), KVH = int_arg(info, 8, "KVH", 1),
            D = int_arg(info, 9, "D", 2);
    check_even(info, D);
    int64_t rows = (pos + 1) * KVH * D;
    table<T>().rope_qkv_decode(buf<T>(info, 0, "q", H * D), buf<T>(info, 1, "kcache", rows), buf<T>(info, 2, "vcache", rows),
                               buf<T>(info, 3, "qkv", (H + 2 * KVH) * D), buf<T>(info, 4, "cos", (pos + 1) * D / 2),
                               buf<T>(info, 5, "sin", (pos + 1) * D / 2), pos, H, KVH, D);
    return info.Env().Undefined();
  }
};

template <class T>
struct AttentionDecode {
  // attentionDecode(out, q, kcache, vcache, Tk, H, KVH, D)
  static Napi::Value call(const Napi::CallbackInfo& info) {
    int64_t Tk = int_arg(info, 4, "Tk", 1), H = int_arg(info, 5, "H", 1), KVH = int_arg(info, 6, "KVH", 1),
            D = int_arg(info, 7, "D", 1);
    check_gqa(info, H, KVH);
    table<T>().attention_decode(buf<T>(info, 0, "out", H * D), buf<T>(info, 1, "q", H * D),
                                buf<T>(info, 2, "kcache", Tk * KVH * D), buf<T>(info, 3, "vcache", Tk * KVH * D), Tk, H,
                                KVH, D);
    return info.Env().Undefined();
  }
};

#define LS_EXPORT_KERNEL(js, Impl, first, firstName)                                               \
  exports.Set(js, Napi::Function::New(env, [](const Napi::CallbackInfo& info) {                      \
                return by_dtype<Impl>(info, first, firstName, js);                                   \
              }))

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("alloc", Napi::Function::New(env, Alloc));
  exports.Set("memoryStats", Napi::Function::New(env, MemoryStats));
  exports.Set("resetPeak", Napi::Function::New(env, ResetPeak));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("getThreads", Napi::Function::New(env, GetThreads));
  exports.Set("isa", Napi::Function::New(env, Isa));
  exports.Set("availableIsas", Napi::Function::New(env, AvailableIsas));
  exports.Set("setIsa", Napi::Function::New(env, SetIsa));
  exports.Set("cpuFeatures", Napi::Function::New(env, CpuFeatures));
  exports.Set("peakFma", Napi::Function::New(env, PeakFma));
  exports.Set("bf16Units", Napi::Function::New(env, Bf16Units));
  exports.Set("bf16Unit", Napi::Function::New(env, Bf16Unit));
  exports.Set("setBf16Unit", Napi::Function::New(env, SetBf16Unit));
  exports.Set("amxUnavailableReason", Napi::Function::New(env, AmxUnavailableReason));
  exports.Set("peakBf16", Napi::Function::New(env, PeakBf16));
  exports.Set("memoryBandwidth", Napi::Function::New(env, MemoryBandwidth));
  exports.Set("lastLevelCacheBytes", Napi::Function::New(env, LastLevelCacheBytes));
  exports.Set("nvmlOpen", Napi::Function::New(env, NvmlOpen));
  exports.Set("nvmlDevices", Napi::Function::New(env, NvmlDevices));
  exports.Set("nvmlEnergyMj", Napi::Function::New(env, NvmlEnergyMj));
  exports.Set("bf16GemmEx", Napi::Function::New(env, Bf16GemmEx));
  exports.Set("gateUpSwiglu", Napi::Function::New(env, GateUpSwiglu));
  exports.Set("swigluUnitBackward", Napi::Function::New(env, SwigluUnitBackward));
  LS_EXPORT_KERNEL("gemm", Gemm, 6, "A");
  exports.Set("gemmBf16", Napi::Function::New(env, GemmBf16Any));
  LS_EXPORT_KERNEL("castToBf16", CastToBf16, 1, "x");
  LS_EXPORT_KERNEL("castFromBf16", CastFromBf16, 0, "y");
  exports.Set("castFromF16", Napi::Function::New(env, CastFromF16));
  LS_EXPORT_KERNEL("embeddingForward", EmbeddingForward, 0, "out");
  LS_EXPORT_KERNEL("embeddingBackward", EmbeddingBackward, 0, "dtable");
  LS_EXPORT_KERNEL("rmsnormForward", RmsnormForward, 1, "rstd");
  LS_EXPORT_KERNEL("rmsnormBackward", RmsnormBackward, 0, "dx");
  LS_EXPORT_KERNEL("ropeTable", RopeTable, 0, "cos");
  LS_EXPORT_KERNEL("ropeApply", RopeApply, 0, "x");
  LS_EXPORT_KERNEL("attentionStandardForward", AttentionStandardForward, 0, "out");
  LS_EXPORT_KERNEL("attentionStandardBackward", AttentionStandardBackward, 0, "dq");
  LS_EXPORT_KERNEL("attentionFlashForward", AttentionFlashForward, 1, "lse");  // out may be bf16 bits
  LS_EXPORT_KERNEL("attentionFlashBackward", AttentionFlashBackward, 0, "dq");
  LS_EXPORT_KERNEL("linearCrossEntropy", LinearCrossEntropy, 2, "lse");
  LS_EXPORT_KERNEL("addRmsnormForward", AddRmsnormForward, 0, "resid");
  LS_EXPORT_KERNEL("ropeQkvSplit", RopeQkvSplit, 3, "qkv");
  LS_EXPORT_KERNEL("gemmQkvRope", GemmQkvRope, 0, "q");
  LS_EXPORT_KERNEL("gemmSwiglu", GemmSwiglu, 2, "x");
  LS_EXPORT_KERNEL("ropeQkvMerge", RopeQkvMerge, 1, "dq");
  LS_EXPORT_KERNEL("swigluPackedForward", SwigluPackedForward, 0, "out");
  LS_EXPORT_KERNEL("swigluPackedBackward", SwigluPackedBackward, 2, "dout");
  LS_EXPORT_KERNEL("swigluForward", SwigluForward, 0, "out");
  LS_EXPORT_KERNEL("swigluBackward", SwigluBackward, 0, "dgate");
  LS_EXPORT_KERNEL("crossEntropyForward", CrossEntropyForward, 0, "lse");
  LS_EXPORT_KERNEL("crossEntropyBackward", CrossEntropyBackward, 0, "dlogits");
  LS_EXPORT_KERNEL("adamw", AdamW, 0, "p");
  LS_EXPORT_KERNEL("sumSquares", SumSquares, 0, "x");
  LS_EXPORT_KERNEL("addInplace", AddInplace, 0, "y");
  LS_EXPORT_KERNEL("scaleInplace", ScaleInplace, 0, "y");
  LS_EXPORT_KERNEL("fill", Fill, 0, "y");
  LS_EXPORT_KERNEL("randn", Randn, 0, "y");
  LS_EXPORT_KERNEL("gemv", Gemv, 0, "y");
  LS_EXPORT_KERNEL("ropeQkvDecode", RopeQkvDecode, 0, "q");
  LS_EXPORT_KERNEL("attentionDecode", AttentionDecode, 0, "out");
  return exports;
}

}  // namespace

NODE_API_MODULE(litespark, Init)
