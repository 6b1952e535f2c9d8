// NVIDIA GPU energy through NVML loaded at run time (nvml.cc): no link-time dependency.
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace ls {
namespace nvml {

// Opens NVML once: '' when it loaded and every GPU reports its energy, else why not.
std::string open();
// The GPUs' names ([] when unavailable).
std::vector<std::string> devices();
// Millijoules summed over the GPUs since their driver loaded; throws std::runtime_error when unavailable.
double energy_mj();

}  // namespace nvml
}  // namespace ls
