// Running an MPI job from a test: `mpirun -np N1 PROGRAM ARGS1 : -np N2 PROGRAM ARGS2 ...` (an
// MPMD job: the ranks of each part get that part's arguments), or one program alone, with its
// output and exit status collected. Built only with ICH_MPI=ON (ICH_MPIEXEC is the launcher).
#pragma once

#include <string>
#include <vector>

namespace ich::test {

struct MpiJob {
  int exit_code = -1;  // 128 + the signal when a signal ended mpirun
  std::string output;  // stdout and stderr of every rank and of mpirun
  double seconds = 0;
};

struct MpiJobPart {
  int ranks = 0;          // 0 (the only part): the program alone, without mpirun
  std::string program;    // a path
  std::string arguments;  // as the shell reads them (quote with shell_quoted)
};

// 'a' 'b c' ...: each argument in single quotes (none may contain one), separated by spaces.
std::string shell_quoted(const std::vector<std::string>& args);

// Runs the job with one OpenMP and one OpenBLAS thread per rank (the ranks share the cores)
// and passive OpenMP waiting; mpirun may oversubscribe the cores, does not bind ranks, and
// keeps its session files in a temporary folder of this job's own.
MpiJob run_mpi_job(const std::vector<MpiJobPart>& parts);

// The job, once the test has stopped (showing the job's output) unless the job exited 0.
MpiJob succeeded(MpiJob job);
// Checks that the job exited non-zero and that its output says `message`.
void check_failed_with(const MpiJob& job, const std::string& message);

}  // namespace ich::test
