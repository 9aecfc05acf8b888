#include "distributed/mpi_job.h"

#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>

namespace ich::test {

std::string shell_quoted(const std::vector<std::string>& args) {
  std::string s;
  for (const std::string& a : args) s += (s.empty() ? "'" : " '") + a + "'";
  return s;
}

#ifdef ICH_HAVE_MPI

MpiJob run_mpi_job(const std::vector<MpiJobPart>& parts) {
  REQUIRE(!parts.empty());
  // mpirun's session folder (normally /tmp/ompi.HOST.UID, shared by every job of the user)
  // in a folder of this job's own: two jobs starting at the same moment (ctest -j, or other
  // checkouts' tests) otherwise race to create it, and the loser fails in orte_init.
  static int counter = 0;
  const std::filesystem::path session =
      std::filesystem::temp_directory_path() /
      ("ichseg-mpi-" + std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::filesystem::create_directories(session);
  std::string command =
      "env OMP_NUM_THREADS=1 OMP_WAIT_POLICY=passive OPENBLAS_NUM_THREADS=1 "
      "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "
      "OMPI_MCA_btl_vader_single_copy_mechanism=none "
      // Open MPI leaks by design in plugins it dlopens and unloads, so LeakSanitizer cannot even
      // name them: the MPI jobs of ASan builds run without leak checking (memory errors are
      // still caught); the in-process tests keep it.
      "ASAN_OPTIONS=\"${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0\" ";
  command += "OMPI_MCA_orte_tmpdir_base='" + session.string() + "' ";
  if (parts.size() == 1 && parts[0].ranks == 0) {
    command += parts[0].program + " " + parts[0].arguments;
  } else {
    command += std::string(ICH_MPIEXEC) + " --oversubscribe --allow-run-as-root --bind-to none";
    for (size_t i = 0; i < parts.size(); ++i) {
      command += (i ? " :" : "") + std::string(" -np ") + std::to_string(parts[i].ranks) + " " +
                 parts[i].program + " " + parts[i].arguments;
    }
  }
  command += " 2>&1";
  const auto start = std::chrono::steady_clock::now();
  FILE* pipe = popen(command.c_str(), "r");
  REQUIRE(pipe != nullptr);
  MpiJob job;
  char chunk[4096];
  size_t got = 0;
  while ((got = fread(chunk, 1, sizeof chunk, pipe)) > 0) job.output.append(chunk, got);
  const int status = pclose(pipe);
  job.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  job.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  std::error_code ec;
  std::filesystem::remove_all(session, ec);
  return job;
}

MpiJob succeeded(MpiJob job) {
  INFO(job.output);
  REQUIRE(job.exit_code == 0);
  return job;
}

void check_failed_with(const MpiJob& job, const std::string& message) {
  CHECK(job.exit_code != 0);
  CHECK_THAT(job.output, Catch::Matchers::Contains(message));
}

#endif  // ICH_HAVE_MPI

}  // namespace ich::test
