// The parts of every process group, the world of one, and the choice between it and MPI's
// (engine/process_group.h).
#include "engine/process_group.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

#ifdef ICH_HAVE_MPI
#include "engine/mpi/process_group_mpi.h"
#endif

namespace ich {

namespace {

const char* env_or_null(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

}  // namespace

bool mpi_compiled_in() {
#ifdef ICH_HAVE_MPI
  return true;
#else
  return false;
#endif
}

int launcher_world_size() {
  const char* world = env_or_null("OMPI_COMM_WORLD_SIZE");
  if (!world) world = env_or_null("PMI_SIZE");
  return world ? std::max(1, std::atoi(world)) : 1;
}

bool launched_by_mpirun() {
  return env_or_null("OMPI_COMM_WORLD_SIZE") || env_or_null("PMIX_RANK") ||
         env_or_null("PMI_SIZE") || env_or_null("PMI_RANK");
}

std::unique_ptr<ProcessGroup> open_process_group(double timeout_s) {
  if (launched_by_mpirun()) {
#ifdef ICH_HAVE_MPI
    return open_mpi_world(timeout_s);
#else
    ICH_CHECK(launcher_world_size() <= 1,
              "this ichseg was built without MPI (ICH_MPI=OFF) but runs under mpirun with "
                  << launcher_world_size()
                  << " ranks; rebuild with -DICH_MPI=ON or run a single process");
#endif
  }
  return std::make_unique<SingleProcessGroup>(timeout_s);
}

// ---- ProcessGroup

ProcessGroup::ProcessGroup(double timeout_s) {
  set_timeout_s(timeout_s);
}

void ProcessGroup::set_timeout_s(double seconds) {
  ICH_CHECK(seconds > 0, "the MPI timeout must be > 0 seconds, got " << seconds);
  timeout_s_ = seconds;
}

void ProcessGroup::broadcast_string(std::string* text, int root) {
  if (size() == 1) return;
  uint64_t length = rank() == root ? uint64_t(text->size()) : 0;
  broadcast(&length, sizeof length, root);
  if (rank() != root) text->assign(size_t(length), '\0');
  broadcast(text->data(), size_t(length), root);
}

void ProcessGroup::abort(const std::string& message, int code) {
  const std::string prefix = "rank " + std::to_string(rank()) + ": ";
  // Errors of a failed collective already name the rank.
  const bool named = message.compare(0, prefix.size(), prefix) == 0;
  std::fprintf(stderr, "%s%s\n", named ? "" : prefix.c_str(), message.c_str());
  std::fflush(stderr);
  abort_peers(code);
  std::_Exit(code);
}

void ProcessGroup::check_root(int root) const {
  ICH_CHECK(root >= 0 && root < size(),
            "broadcast root " << root << " is not a rank of " << size());
}

void ProcessGroup::check_send_peer(int dest) const {
  ICH_CHECK(size() > 1, "send needs at least 2 ranks; start the run with mpirun -np N");
  ICH_CHECK(dest >= 0 && dest < size() && dest != rank(),
            "rank " << rank() << " cannot send to rank " << dest << " of " << size());
}

void ProcessGroup::check_recv_peer(int source) const {
  ICH_CHECK(size() > 1, "recv needs at least 2 ranks; start the run with mpirun -np N");
  ICH_CHECK(source == kAnySource || (source >= 0 && source < size() && source != rank()),
            "rank " << rank() << " cannot receive from rank " << source << " of " << size());
}

// ---- SingleProcessGroup

SingleProcessGroup::SingleProcessGroup(double timeout_s) : ProcessGroup(timeout_s) {}

void SingleProcessGroup::allgather(const double* mine, int64_t count, double* all) {
  std::copy(mine, mine + count, all);
}

void SingleProcessGroup::broadcast(void*, size_t, int root) {
  check_root(root);
}

// A world of one has no peer: the checks refuse every message.
void SingleProcessGroup::send(const void*, size_t, int dest, int) {
  check_send_peer(dest);
}

ProcessGroup::Received SingleProcessGroup::recv(void*, size_t, int source, int) {
  check_recv_peer(source);
  return {};
}

}  // namespace ich
