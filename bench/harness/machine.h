// What a benchmark records about the machine it ran on, read from /proc and the C library.
#pragma once

#include <string>

namespace ich::bench {

std::string load_average();  // "0.52 0.61 0.70" (1, 5, 15 min), or "unknown"
std::string utc_now();       // "2026-11-29 23:20 UTC"
double mem_total_bytes();    // MemTotal of /proc/meminfo; 8 GiB when it cannot be read
long online_cpus();

}  // namespace ich::bench
