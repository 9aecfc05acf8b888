// Runs one hidden test case of the current test executable in a child process and
// captures what it prints, for tests whose subject is a sanitizer report (which aborts the
// process, or fails it at exit): the parent asserts on the report, and stays clean itself.
#pragma once

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <string>

namespace ich::test {

struct ChildResult {
  int exit_code = -1;  // the child's exit status, or 128 + signal
  std::string output;  // stdout and stderr together
};

// `test_name` is a Catch2 test name (hidden ones carry the "[.]" tag) of this executable.
inline ChildResult run_test_in_child(const std::string& test_name) {
  char exe[4096];
  const ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
  ChildResult r;
  if (len <= 0) {
    r.output = "cannot find the test executable through /proc/self/exe";
    return r;
  }
  exe[len] = '\0';
  const std::string command = "'" + std::string(exe) + "' '" + test_name + "' 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) {
    r.output = "popen failed for: " + command;
    return r;
  }
  char chunk[4096];
  size_t got;
  while ((got = fread(chunk, 1, sizeof(chunk), pipe)) > 0) r.output.append(chunk, got);
  const int status = pclose(pipe);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.exit_code = 128 + WTERMSIG(status);
  return r;
}

}  // namespace ich::test
