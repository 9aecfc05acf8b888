#include "apps/train_progress.h"

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace ich::app {

std::string duration_text(double seconds) {
  char buf[32];
  const long s = std::lround(std::max(0.0, seconds));
  if (s >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", s / 3600, (s / 60) % 60);
  else
    std::snprintf(buf, sizeof buf, "%ldm%02lds", s / 60, s % 60);
  return buf;
}

Progress::Progress(int64_t steps_per_epoch, bool may_rewrite)
    : tty_(may_rewrite && ::isatty(STDOUT_FILENO) != 0),
      every_(std::max<int64_t>(1, steps_per_epoch / 4)) {}

void Progress::step(int epoch, int epochs, int64_t step, int64_t steps, double loss, double dice,
                    double images_per_s, double eta_seconds) {
  if (!tty_ && step % every_ != 0 && step != steps) return;
  char bar[24] = {};
  const int filled = static_cast<int>(20 * step / std::max<int64_t>(1, steps));
  for (int i = 0; i < 20; ++i) bar[i] = i < filled ? '#' : '.';
  std::printf("%sepoch %d/%d [%s] %lld/%lld loss %.4f dice %.4f %.1f img/s eta %s%s",
              tty_ ? "\r\033[K" : "", epoch, epochs, bar, static_cast<long long>(step),
              static_cast<long long>(steps), loss, dice, images_per_s,
              duration_text(eta_seconds).c_str(), tty_ ? "" : "\n");
  std::fflush(stdout);
}

void Progress::line(const std::string& text) {
  std::printf("%s%s\n", tty_ ? "\r\033[K" : "", text.c_str());
  std::fflush(stdout);
}

}  // namespace ich::app
