#include "bench/harness/machine.h"

#include <unistd.h>

#include <ctime>
#include <fstream>

namespace ich::bench {

std::string load_average() {
  std::ifstream in("/proc/loadavg");
  std::string a, b, c;
  in >> a >> b >> c;
  return a.empty() ? "unknown" : a + " " + b + " " + c;
}

std::string utc_now() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M UTC", std::gmtime(&t));
  return buf;
}

double mem_total_bytes() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  double kib = 0;
  while (in >> key >> kib) {
    if (key == "MemTotal:") return kib * 1024.0;
    in.ignore(1 << 10, '\n');
  }
  return 8.0 * 1024.0 * 1024.0 * 1024.0;
}

long online_cpus() {
  return ::sysconf(_SC_NPROCESSORS_ONLN);
}

}  // namespace ich::bench
