// What `ichseg train` prints while it runs: one progress line, rewritten in place on a
// terminal, plain lines a few times per epoch otherwise (a log file should not fill with
// carriage returns).
#pragma once

#include <cstdint>
#include <string>

namespace ich::app {

// "3m07s", "1h02m"
std::string duration_text(double seconds);

class Progress {
 public:
  // may_rewrite false: plain lines even on a terminal (mpirun hands each rank a pty and
  // interleaves the ranks' lines, so carriage returns would only garble its output).
  Progress(int64_t steps_per_epoch, bool may_rewrite);

  void step(int epoch, int epochs, int64_t step, int64_t steps, double loss, double dice,
            double images_per_s, double eta_seconds);
  void line(const std::string& text);

 private:
  bool tty_;
  int64_t every_;
};

}  // namespace ich::app
