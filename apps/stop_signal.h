// SIGINT and SIGTERM during training: the first one asks the loop to stop after the current
// step (it writes a checkpoint and says how to continue); a second one ends the process at
// once.
#pragma once

#include <signal.h>

namespace ich::app {

// Installs the handlers for its lifetime (and puts the previous ones back).
class StopSignalGuard {
 public:
  StopSignalGuard();
  ~StopSignalGuard();
  StopSignalGuard(const StopSignalGuard&) = delete;
  StopSignalGuard& operator=(const StopSignalGuard&) = delete;

 private:
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
};

// The signal received since the guard was installed (SIGINT or SIGTERM), or 0.
int stop_signal_received();

}  // namespace ich::app
