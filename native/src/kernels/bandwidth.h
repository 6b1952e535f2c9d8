// Memory bandwidth calibration (bandwidth.cc): the STREAM triad, GB/s.
#pragma once
#include <cstdint>

namespace ls {

// Size of the last-level cache in bytes (L3, else L2), 0 when the system does not say.
int64_t last_level_cache_bytes();

// Best GB/s of the triad a = b + s*c over three float64 arrays of `bytes_per_array` each, on
// `threads` threads, passes repeated for about `seconds` (at least one warm-up and three timed).
double triad_gbps(int threads, double seconds, int64_t bytes_per_array);

}  // namespace ls
