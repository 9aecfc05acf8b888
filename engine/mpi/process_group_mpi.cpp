// The MPI world as a ProcessGroup (engine/process_group.h): Open MPI / MPICH, host buffers.
//
// Every collective and message is posted non-blocking and polled against the group's
// deadline (wait below), so a rank that died or hangs becomes an ich::Error on the others,
// never a hang. Errors come back as return codes (MPI_ERRORS_RETURN on a private duplicate
// of MPI_COMM_WORLD) and become an ich::Error with MPI's text.
#include "engine/mpi/process_group_mpi.h"

#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <exception>
#include <limits>
#include <sstream>
#include <string>
#include <thread>

#include "core/error.h"

namespace ich {

namespace {

class MpiProcessGroup final : public ProcessGroup {
 public:
  explicit MpiProcessGroup(double timeout_s);
  ~MpiProcessGroup() override;

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void barrier() override;
  void allreduce_sum(float* data, int64_t count) override;
  void allreduce_sum(double* data, int64_t count) override;
  void allgather(const double* mine, int64_t count, double* all) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void send(const void* data, size_t bytes, int dest, int tag) override;
  Received recv(void* data, size_t capacity, int source, int tag) override;

 protected:
  void abort_peers(int code) override;

 private:
  [[noreturn]] void fail(const std::string& what);
  void check_mpi(int code, const char* call);
  void wait(MPI_Request* request, MPI_Status* status, const char* what);
  void allreduce_in_place(void* data, int64_t count, MPI_Datatype type, const char* elements,
                          const char* what);

  MPI_Comm comm_ = MPI_COMM_NULL;
  bool initialised_here_ = false;
  int rank_ = 0;
  int size_ = 1;
  bool failed_ = false;
};

MpiProcessGroup::MpiProcessGroup(double timeout_s) : ProcessGroup(timeout_s) {
  int finalized = 0, initialized = 0;
  MPI_Finalized(&finalized);
  ICH_CHECK(!finalized,
            "MPI was already finalised in this process; open one process group "
            "per process and keep it for the whole run");
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    // Only the thread that opened the group calls MPI (OpenMP threads never do).
    ICH_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS,
              "MPI_Init_thread failed: is this process started by a matching mpirun?");
    initialised_here_ = true;
  }
  MPI_Comm_dup(MPI_COMM_WORLD, &comm_);
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &size_);
}

MpiProcessGroup::~MpiProcessGroup() {
  if (size_ > 1 && (failed_ || std::uncaught_exceptions() > 0)) {
    // Other ranks may be waiting in a collective this rank will never join: end the job
    // now rather than leave them to their own deadline.
    std::fprintf(stderr, "rank %d: leaving on an error; aborting the MPI job\n", rank_);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Comm_free(&comm_);
  if (initialised_here_) MPI_Finalize();
}

void MpiProcessGroup::fail(const std::string& what) {
  failed_ = true;
  ICH_FAIL("rank " << rank_ << ": " << what);
}

void MpiProcessGroup::check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  fail(std::string(call) + " failed: " + std::string(text, size_t(length)) +
       " (a rank died or the network failed)");
}

// Polls a request until it completes; throws once timeout_s has passed. Spinning keeps
// latency low for short waits; after that the thread sleeps between polls so a waiting rank
// leaves the cores to the ranks still computing (mpirun --oversubscribe on few cores).
void MpiProcessGroup::wait(MPI_Request* request, MPI_Status* status, const char* what) {
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(timeout_s());
  for (int polls = 0;; ++polls) {
    int done = 0;
    check_mpi(MPI_Test(request, &done, status ? status : MPI_STATUS_IGNORE), what);
    if (done) return;
    if (polls > 2000) {
      if (std::chrono::steady_clock::now() > deadline) {
        std::ostringstream msg;
        msg << "no answer from the other ranks within " << timeout_s() << " s during " << what
            << " (a rank died or hangs; the timeout is an option)";
        fail(msg.str());
      }
      std::this_thread::sleep_for(std::chrono::microseconds(polls > 20000 ? 500 : 50));
    }
  }
}

void MpiProcessGroup::barrier() {
  if (size_ == 1) return;
  MPI_Request req;
  check_mpi(MPI_Ibarrier(comm_, &req), "MPI_Ibarrier");
  wait(&req, nullptr, "a barrier");
}

// The sum over ranks of `count` values of `type` (named `elements` in messages), in place.
void MpiProcessGroup::allreduce_in_place(void* data, int64_t count, MPI_Datatype type,
                                         const char* elements, const char* what) {
  if (size_ == 1 || count == 0) return;
  ICH_CHECK(count <= std::numeric_limits<int>::max(),
            "an all-reduce of " << count << " " << elements << " is too large for one MPI call");
  MPI_Request req;
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, int(count), type, MPI_SUM, comm_, &req),
            "MPI_Iallreduce");
  wait(&req, nullptr, what);
}

void MpiProcessGroup::allreduce_sum(float* data, int64_t count) {
  allreduce_in_place(data, count, MPI_FLOAT, "floats", "a gradient all-reduce");
}

void MpiProcessGroup::allreduce_sum(double* data, int64_t count) {
  allreduce_in_place(data, count, MPI_DOUBLE, "doubles", "an all-reduce of training statistics");
}

void MpiProcessGroup::allgather(const double* mine, int64_t count, double* all) {
  if (count == 0) return;
  if (size_ == 1) {
    std::copy(mine, mine + count, all);
    return;
  }
  ICH_CHECK(count <= std::numeric_limits<int>::max(),
            "an all-gather of " << count << " doubles is too large for one MPI call");
  MPI_Request req;
  check_mpi(MPI_Iallgather(mine, int(count), MPI_DOUBLE, all, int(count), MPI_DOUBLE, comm_, &req),
            "MPI_Iallgather");
  wait(&req, nullptr, "a synchronised BatchNorm exchange");
}

void MpiProcessGroup::broadcast(void* data, size_t bytes, int root) {
  check_root(root);
  if (size_ == 1 || bytes == 0) return;
  ICH_CHECK(bytes <= size_t(std::numeric_limits<int>::max()),
            "a broadcast of " << bytes << " bytes is too large for one MPI call");
  MPI_Request req;
  check_mpi(MPI_Ibcast(data, int(bytes), MPI_BYTE, root, comm_, &req), "MPI_Ibcast");
  wait(&req, nullptr, "a broadcast");
}

void MpiProcessGroup::send(const void* data, size_t bytes, int dest, int tag) {
  check_send_peer(dest);
  ICH_CHECK(bytes <= size_t(std::numeric_limits<int>::max()),
            "a message of " << bytes << " bytes is too large for one MPI call");
  MPI_Request req;
  check_mpi(MPI_Isend(data, int(bytes), MPI_BYTE, dest, tag, comm_, &req), "MPI_Isend");
  wait(&req, nullptr, "a send");
}

ProcessGroup::Received MpiProcessGroup::recv(void* data, size_t capacity, int source, int tag) {
  check_recv_peer(source);
  ICH_CHECK(capacity <= size_t(std::numeric_limits<int>::max()),
            "a message of " << capacity << " bytes is too large for one MPI call");
  MPI_Request req;
  MPI_Status status;
  check_mpi(MPI_Irecv(data, int(capacity), MPI_BYTE, source == kAnySource ? MPI_ANY_SOURCE : source,
                      tag, comm_, &req),
            "MPI_Irecv");
  wait(&req, &status, "a receive");
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  Received got;
  got.source = status.MPI_SOURCE;
  got.bytes = size_t(count);
  return got;
}

void MpiProcessGroup::abort_peers(int code) {
  MPI_Abort(MPI_COMM_WORLD, code);
}

}  // namespace

std::unique_ptr<ProcessGroup> open_mpi_world(double timeout_s) {
  return std::make_unique<MpiProcessGroup>(timeout_s);
}

}  // namespace ich
