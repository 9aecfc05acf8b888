// Helpers of the cli tests: running the ichseg binary of this build as a child process (stdout
// and stderr apart, the exit code or the signal), and a tiny synthetic dataset to train on.
// The scratch folder per test and the text-file helpers are common/test_files.h's.
#pragma once

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "common/test_files.h"

extern char** environ;

namespace ich::test {

struct Result {
  int exit_code = -1;  // -1 when a signal ended the process
  int signal = 0;
  std::string out, err;
};

// Runs `ichseg args...`. on_stdout (optional) sees stdout as it grows and may return true once
// to have `signal_to_send` delivered to the child at that moment.
inline Result run_ichseg(const std::vector<std::string>& args,
                         const std::function<bool(const std::string&)>& on_stdout = nullptr,
                         int signal_to_send = SIGINT) {
  const std::string binary = std::string(ICH_BINARY_DIR) + "/apps/ichseg";
  std::vector<std::string> argv_store{binary};
  argv_store.insert(argv_store.end(), args.begin(), args.end());
  std::vector<char*> argv;
  for (auto& a : argv_store) argv.push_back(a.data());
  argv.push_back(nullptr);
  // Passive OpenMP waiting: CTest runs tests in parallel on 2 cores, and spinning OpenMP
  // workers of several processes on the same cores slow each other down a hundredfold.
  std::vector<std::string> env_store;
  for (char** e = environ; *e; ++e)
    if (std::strncmp(*e, "OMP_WAIT_POLICY=", 16) != 0) env_store.emplace_back(*e);
  env_store.emplace_back("OMP_WAIT_POLICY=passive");
  std::vector<char*> envp;
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  REQUIRE(::pipe(out_pipe) == 0);
  REQUIRE(::pipe(err_pipe) == 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err_pipe[1], STDERR_FILENO);
  posix_spawn_file_actions_addclose(&actions, out_pipe[0]);
  posix_spawn_file_actions_addclose(&actions, err_pipe[0]);
  pid_t pid = 0;
  const int spawned =
      posix_spawn(&pid, binary.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);
  REQUIRE(spawned == 0);

  Result r;
  bool signalled = false;
  pollfd fds[2] = {{out_pipe[0], POLLIN, 0}, {err_pipe[0], POLLIN, 0}};
  int open_fds = 2;
  char buf[4096];
  while (open_fds > 0) {
    if (::poll(fds, 2, -1) < 0) break;
    for (int i = 0; i < 2; ++i) {
      if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
      const ssize_t got = ::read(fds[i].fd, buf, sizeof buf);
      if (got <= 0) {
        ::close(fds[i].fd);
        fds[i].fd = -1;
        --open_fds;
        continue;
      }
      (i == 0 ? r.out : r.err).append(buf, size_t(got));
      if (i == 0 && on_stdout && !signalled && on_stdout(r.out)) {
        ::kill(pid, signal_to_send);
        signalled = true;
      }
    }
  }
  int status = 0;
  ::waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

// run_ichseg that requires exit code 0, printing the command's output when it is not.
inline Result run_ichseg_ok(const std::vector<std::string>& args) {
  Result r = run_ichseg(args);
  INFO(r.out << r.err);
  REQUIRE(r.exit_code == 0);
  return r;
}

inline size_t line_count(const std::string& text) {
  size_t n = 0;
  for (char c : text) n += c == '\n';
  return n;
}

// A tiny CT-ICH set (4 patients, 64x64, about 6 slices each, every patient with hemorrhage)
// and its prepared folder: DIR/ct and DIR/prepared.
inline void make_tiny_dataset(const TempDir& dir) {
  run_ichseg_ok({"synth", "--out", dir / "ct", "--patients", "4", "--size", "64", "--slices", "6",
                 "--slice-jitter", "0", "--healthy-fraction", "0", "--seed", "11"});
  run_ichseg_ok({"prepare", "--data", dir / "ct", "--out", dir / "prepared"});
}

// The settings of a tiny training run on make_tiny_dataset's folder.
inline std::vector<std::string> tiny_train_args(const TempDir& dir, const std::string& run,
                                                int epochs = 2) {
  return {"train",   "--data",      dir / "prepared",
          "--out",   dir / run,     "--width",
          "4",       "--epochs",    std::to_string(epochs),
          "--batch", "4",           "--lr",
          "0.01",    "--drop-rate", "0.1",
          "--seed",  "5",           "--val-samples",
          "2"};
}

}  // namespace ich::test
