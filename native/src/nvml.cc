// NVIDIA GPU energy through NVML, opened at run time: dlopen("libnvidia-ml.so.1") (the driver's
// library), so the addon has no link-time dependency on it and loads on machines without a GPU.
// nvmlDeviceGetTotalEnergyConsumption: millijoules since the driver was loaded (Volta and newer).
#include "nvml.h"

#include <dlfcn.h>

#include <mutex>
#include <string>
#include <vector>

namespace ls {
namespace nvml {

namespace {

// The few NVML entry points used, with their C signatures (nvml.h): return codes are ints, 0 = success.
struct NvmlDevice;
using Init = int (*)();
using GetCount = int (*)(unsigned*);
using GetHandle = int (*)(unsigned, NvmlDevice**);
using GetEnergy = int (*)(NvmlDevice*, unsigned long long*);
using GetName = int (*)(NvmlDevice*, char*, unsigned);
using ErrorString = const char* (*)(int);

struct State {
  bool tried = false;
  std::string reason;  // '' when usable
  GetEnergy energy = nullptr;
  std::vector<NvmlDevice*> devices;
  std::vector<std::string> names;
};

State g_state;
std::mutex g_mutex;

template <class F>
F sym(void* lib, const char* name) {
  return reinterpret_cast<F>(dlsym(lib, name));
}

void open_once() {
  if (g_state.tried) return;
  g_state.tried = true;
  void* lib = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (!lib) {
    const char* e = dlerror();
    g_state.reason = std::string("libnvidia-ml.so.1 not loadable (no NVIDIA driver): ") + (e ? e : "unknown error");
    return;
  }
  auto init = sym<Init>(lib, "nvmlInit_v2");
  auto count = sym<GetCount>(lib, "nvmlDeviceGetCount_v2");
  auto handle = sym<GetHandle>(lib, "nvmlDeviceGetHandleByIndex_v2");
  auto energy = sym<GetEnergy>(lib, "nvmlDeviceGetTotalEnergyConsumption");
  auto name = sym<GetName>(lib, "nvmlDeviceGetName");
  auto errstr = sym<ErrorString>(lib, "nvmlErrorString");
  if (!init || !count || !handle || !energy || !name) {
    g_state.reason = "libnvidia-ml.so.1 lacks nvmlInit_v2 / nvmlDeviceGetTotalEnergyConsumption (driver too old)";
    return;
  }
  auto why = [&](const char* what, int rc) {
    return std::string(what) + " failed: " + (errstr ? errstr(rc) : ("NVML error " + std::to_string(rc)));
  };
  int rc = init();
  if (rc != 0) {
    g_state.reason = why("nvmlInit", rc);
    return;
  }
  unsigned n = 0;
  rc = count(&n);
  if (rc != 0) {
    g_state.reason = why("nvmlDeviceGetCount", rc);
    return;
  }
  if (n == 0) {
    g_state.reason = "NVML found no GPU";
    return;
  }
  for (unsigned i = 0; i < n; i++) {
    NvmlDevice* d = nullptr;
    rc = handle(i, &d);
    if (rc != 0) {
      g_state.reason = why(("nvmlDeviceGetHandleByIndex(" + std::to_string(i) + ")").c_str(), rc);
      return;
    }
    char buf[96] = {0};
    std::string dev = name(d, buf, sizeof buf) == 0 ? std::string(buf) : "GPU " + std::to_string(i);
    unsigned long long mj = 0;
    rc = energy(d, &mj);
    if (rc != 0) {
      g_state.reason = why(("nvmlDeviceGetTotalEnergyConsumption on " + dev).c_str(), rc);
      return;
    }
    g_state.devices.push_back(d);
    g_state.names.push_back(dev);
  }
  g_state.energy = energy;
}

}  // namespace

std::string open() {
  std::lock_guard<std::mutex> lock(g_mutex);
  open_once();
  return g_state.reason;
}

std::vector<std::string> devices() {
  std::lock_guard<std::mutex> lock(g_mutex);
  open_once();
  return g_state.reason.empty() ? g_state.names : std::vector<std::string>{};
}

double energy_mj() {
  std::lock_guard<std::mutex> lock(g_mutex);
  open_once();
  if (!g_state.reason.empty()) throw std::runtime_error("NVML unavailable: " + g_state.reason);
  double total = 0;
  for (auto* d : g_state.devices) {
    unsigned long long mj = 0;
    int rc = g_state.energy(d, &mj);
    if (rc != 0) throw std::runtime_error("nvmlDeviceGetTotalEnergyConsumption failed: NVML error " + std::to_string(rc));
    total += static_cast<double>(mj);
  }
  return total;
}

}  // namespace nvml
}  // namespace ls
