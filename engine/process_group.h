// ProcessGroup: the processes of a data-parallel job and the collectives between them, as
// PyTorch's c10d ProcessGroup. Two implementations:
//   SingleProcessGroup (below): a world of one process; every collective is a no-op (an
//     all-gather copies), and point-to-point messages are refused (there is no peer).
//   the MPI world (engine/mpi/process_group_mpi.cpp, built only with ICH_MPI=ON).
// open_process_group() gives the one this process was started for. The ops (synchronised
// BatchNorm) and the data-parallel pieces (engine/data_parallel.h, engine/parameter_server.h)
// see only this interface, so nothing but the MPI file includes mpi.h; a test can implement
// the interface in memory.
//
// Failure: every wait has a deadline (timeout_s). When a rank dies or hangs, the others throw
// ich::Error "rank R: no answer from the other ranks within T s ..." instead of hanging, and
// the MPI group's destructor then calls MPI_Abort so mpirun ends the whole job with a
// non-zero status.
//
// Host buffers only: device tensors are copied to the host by the callers (NCCL between GPUs
// is a later step).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace ich {

// True when this build has MPI (ICH_MPI=ON).
bool mpi_compiled_in();
// True when the environment says this process was started by an MPI launcher (mpirun /
// mpiexec of Open MPI, MPICH or a PMIx launcher).
bool launched_by_mpirun();
// The number of processes the launcher started (OMPI_COMM_WORLD_SIZE, PMI_SIZE), read from
// the environment without initialising MPI; 1 when not started by a launcher.
int launcher_world_size();

class ProcessGroup {
 public:
  static constexpr double kDefaultTimeoutSeconds = 120.0;
  static constexpr int kAnySource = -1;  // recv: a message from any rank

  virtual ~ProcessGroup() = default;
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  virtual int rank() const = 0;
  virtual int size() const = 0;
  bool is_root() const { return rank() == 0; }
  double timeout_s() const { return timeout_s_; }
  void set_timeout_s(double seconds);

  // Collectives: every rank calls them, in the same order; each waits at most timeout_s and
  // throws ich::Error after that.
  virtual void barrier() = 0;
  // In place: data[i] = sum over ranks of data[i].
  virtual void allreduce_sum(float* data, int64_t count) = 0;
  virtual void allreduce_sum(double* data, int64_t count) = 0;
  // Every rank passes `count` doubles; `all` (size() * count) receives rank 0's, then rank
  // 1's, ..., identical on every rank.
  virtual void allgather(const double* mine, int64_t count, double* all) = 0;
  // root's `bytes` bytes at data are copied to every rank's data.
  virtual void broadcast(void* data, size_t bytes, int root) = 0;
  // root's string (any length, any bytes) replaces every rank's *text.
  void broadcast_string(std::string* text, int root = 0);

  // Point to point, each waits at most timeout_s. recv accepts a message of at most
  // `capacity` bytes from `source` (kAnySource: any rank) and returns its sender and size.
  struct Received {
    int source = 0;
    size_t bytes = 0;
  };
  virtual void send(const void* data, size_t bytes, int dest, int tag) = 0;
  virtual Received recv(void* data, size_t capacity, int source, int tag) = 0;

  // Prints "rank R: <message>" on stderr (once: a message that already names the rank is
  // printed as it is) and ends the whole job with `code`; does not return.
  [[noreturn]] void abort(const std::string& message, int code = 1);

 protected:
  explicit ProcessGroup(double timeout_s);
  // abort's step before this process exits: ends the other processes of the job with
  // `code` (MPI_Abort). A world of one has none.
  virtual void abort_peers(int code) = 0;
  // The argument checks every implementation makes, with the messages a user sees.
  void check_root(int root) const;
  void check_send_peer(int dest) const;
  void check_recv_peer(int source) const;

 private:
  double timeout_s_ = kDefaultTimeoutSeconds;
};

// A world of one process (rank 0 of 1): what a run without mpirun trains in.
class SingleProcessGroup : public ProcessGroup {
 public:
  explicit SingleProcessGroup(double timeout_s = kDefaultTimeoutSeconds);

  int rank() const override { return 0; }
  int size() const override { return 1; }
  void barrier() override {}
  void allreduce_sum(float*, int64_t) override {}
  void allreduce_sum(double*, int64_t) override {}
  void allgather(const double* mine, int64_t count, double* all) override;
  void broadcast(void* data, size_t bytes, int root) override;
  void send(const void* data, size_t bytes, int dest, int tag) override;
  Received recv(void* data, size_t capacity, int source, int tag) override;

 protected:
  void abort_peers(int) override {}
};

// The process group of this process, one per process, kept for the whole run: MPI's world
// when it was started by mpirun in an ICH_MPI build (MPI is initialised here and finalised
// when the group is destroyed), a SingleProcessGroup otherwise. Refuses an mpirun job of
// several ranks in a build without MPI.
std::unique_ptr<ProcessGroup> open_process_group(
    double timeout_s = ProcessGroup::kDefaultTimeoutSeconds);

}  // namespace ich
