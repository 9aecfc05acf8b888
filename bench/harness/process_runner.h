// The one place the benchmark harness starts processes: fork + execve of a prepared argument
// and environment list, stdout and stderr read apart through poll(), a deadline after which
// the child is killed (SIGKILL), and the child's peak resident set from wait4().
#pragma once

#include <string>
#include <vector>

namespace ich::bench {

struct ChildOutcome {
  bool timed_out = false;    // killed at the deadline
  int exit_code = -1;        // when it exited; -1 otherwise
  int signal = 0;            // when a signal ended it (SIGKILL after a timeout too)
  std::string out, err;      // everything it wrote
  double max_rss_bytes = 0;  // its peak resident set
};

// Runs argv[0] (a path) with argv and the environment env (KEY=VALUE each); gives up after
// timeout_s seconds. Throws ich::Error only when the process cannot be started at all.
ChildOutcome run_child_process(const std::vector<std::string>& argv,
                               const std::vector<std::string>& env, double timeout_s);

// This process's environment, less the entries whose key is set in overrides (KEY=VALUE),
// then the overrides in their order.
std::vector<std::string> environment_with(const std::vector<std::string>& overrides);

}  // namespace ich::bench
