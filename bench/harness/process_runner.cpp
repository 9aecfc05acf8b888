#include "bench/harness/process_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>

#include "core/error.h"

extern char** environ;

namespace ich::bench {

namespace {

using Clock = std::chrono::steady_clock;

// Reads both pipes until they close or the deadline passes (then kills pid); true when the
// deadline passed.
bool drain(int out_fd, int err_fd, pid_t pid, double timeout_s, std::string* out,
           std::string* err) {
  pollfd fds[2] = {{out_fd, POLLIN, 0}, {err_fd, POLLIN, 0}};
  int open_fds = 2;
  bool timed_out = false;
  const auto deadline = Clock::now() + std::chrono::duration<double>(timeout_s);
  char buf[4096];
  while (open_fds > 0) {
    const double left = std::chrono::duration<double>(deadline - Clock::now()).count();
    if (left <= 0) {
      timed_out = true;
      ::kill(pid, SIGKILL);
      break;
    }
    const int ready = ::poll(fds, 2, int(std::min(left * 1000.0 + 1.0, 1000.0)));
    if (ready < 0 && errno != EINTR) break;
    for (auto& fd : fds) {
      if (fd.fd < 0 || !(fd.revents & (POLLIN | POLLHUP | POLLERR))) continue;
      const ssize_t got = ::read(fd.fd, buf, sizeof buf);
      if (got <= 0) {
        ::close(fd.fd);
        fd.fd = -1;
        --open_fds;
        continue;
      }
      (&fd == &fds[0] ? out : err)->append(buf, size_t(got));
    }
  }
  for (auto& fd : fds)
    if (fd.fd >= 0) ::close(fd.fd);
  return timed_out;
}

}  // namespace

std::vector<std::string> environment_with(const std::vector<std::string>& overrides) {
  const auto overridden = [&](const char* entry) {
    for (const std::string& o : overrides) {
      const size_t key_end = o.find('=') + 1;  // the key with its '='
      if (std::strncmp(entry, o.c_str(), key_end) == 0) return true;
    }
    return false;
  };
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e)
    if (!overridden(*e)) env.emplace_back(*e);
  env.insert(env.end(), overrides.begin(), overrides.end());
  return env;
}

ChildOutcome run_child_process(const std::vector<std::string>& args,
                               const std::vector<std::string>& env, double timeout_s) {
  // Everything execve needs is built before fork: the child may only call async-signal-safe
  // functions until it has executed the program.
  std::vector<std::string> args_store = args, env_store = env;
  std::vector<char*> argv, envp;
  for (auto& a : args_store) argv.push_back(a.data());
  argv.push_back(nullptr);
  for (auto& e : env_store) envp.push_back(e.data());
  envp.push_back(nullptr);

  int out_pipe[2], err_pipe[2];
  ICH_CHECK(::pipe2(out_pipe, O_CLOEXEC) == 0 && ::pipe2(err_pipe, O_CLOEXEC) == 0,
            "cannot create a pipe for a benchmark child: " << std::strerror(errno));
  const pid_t pid = ::fork();
  ICH_CHECK(pid >= 0, "cannot start a benchmark child: " << std::strerror(errno));
  if (pid == 0) {
    ::dup2(out_pipe[1], STDOUT_FILENO);
    ::dup2(err_pipe[1], STDERR_FILENO);
    ::execve(argv[0], argv.data(), envp.data());
    _exit(127);
  }
  ::close(out_pipe[1]);
  ::close(err_pipe[1]);

  ChildOutcome r;
  r.timed_out = drain(out_pipe[0], err_pipe[0], pid, timeout_s, &r.out, &r.err);
  int status = 0;
  rusage usage{};
  while (::wait4(pid, &status, 0, &usage) < 0 && errno == EINTR) {
  }
  r.max_rss_bytes = double(usage.ru_maxrss) * 1024.0;  // Linux: KiB
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  return r;
}

}  // namespace ich::bench
