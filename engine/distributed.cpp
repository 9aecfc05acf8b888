// Data-parallel training over MPI (engine/distributed.h).
#include "engine/distributed.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <limits>
#include <map>
#include <thread>

#include "core/philox.h"

#ifdef ICH_HAVE_MPI
#include <mpi.h>
#endif

namespace ich {

namespace {

const char* env_or_null(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

// Tags of the parameter-server protocol.
constexpr int kPushTag = 101;
constexpr int kWeightsTag = 102;

// Message headers, int64 words in front of the payload.
enum PushKind : int64_t { kPushGradients = 1, kPushDone = 2 };
// kind, version the gradient was computed on, then kPushStatsWords doubles (PushStats)
constexpr size_t kPushHeaderWords = 2;
constexpr size_t kWeightsHeaderWords = 2;  // server version, 1 when the push was applied

size_t total_bytes(const NamedTensors& tensors) {
  size_t bytes = 0;
  for (const auto& [name, t] : tensors) bytes += t.nbytes();
  return bytes;
}

int64_t total_numel(const std::vector<Tensor>& tensors) {
  int64_t n = 0;
  for (const Tensor& t : tensors) n += t.numel();
  return n;
}

// Copies each tensor's bytes to dst, one after the other; returns the end.
uint8_t* pack_tensors(const NamedTensors& tensors, uint8_t* dst) {
  for (const auto& [name, t] : tensors) {
    t.backend().copy_to_host(dst, t.raw_data(), t.nbytes());
    dst += t.nbytes();
  }
  return dst;
}

// The inverse of pack_tensors, writing into the tensors' storage in place.
const uint8_t* unpack_into(const NamedTensors& tensors, const uint8_t* src) {
  for (const auto& [name, t] : tensors) {
    t.backend().copy_from_host(t.raw_data(), src, t.nbytes());
    src += t.nbytes();
  }
  return src;
}

// Every parameter's grad as floats, one after the other; zeros where a parameter has none.
float* pack_grads(const std::vector<Tensor>& params, float* dst) {
  for (const Tensor& p : params) {
    const Tensor& g = p.grad();
    if (g.defined()) {
      ICH_CHECK(g.numel() == p.numel() && g.dtype() == DType::f32,
                "the grad of a parameter " << p.describe() << " is " << g.describe());
      g.backend().copy_to_host(dst, g.raw_data(), g.nbytes());
    } else {
      std::fill(dst, dst + p.numel(), 0.0f);
    }
    dst += p.numel();
  }
  return dst;
}

// Makes src the grad of p: in place when this grad is nobody else's, else in a new tensor
// (autograd may hand the same gradient tensor to several leaves).
void set_grad_from_host(Tensor& p, const float* src) {
  const Tensor& g = p.grad();
  if (g.defined() && g.exclusively_owned() && g.device() == p.device()) {
    g.backend().copy_from_host(g.raw_data(), src, g.nbytes());
    return;
  }
  Tensor fresh = Tensor::empty(p.shape(), p.device());
  fresh.backend().copy_from_host(fresh.raw_data(), src, fresh.nbytes());
  p.set_grad(fresh);
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

// ---- Communicator

struct Communicator::Impl {
#ifdef ICH_HAVE_MPI
  MPI_Comm comm = MPI_COMM_NULL;
  bool initialised_here = false;
#endif
};

Communicator::Communicator(double timeout_s) : impl_(std::make_unique<Impl>()) {
  set_timeout_s(timeout_s);
  if (!launched_by_mpirun()) return;  // a single-process world
#ifdef ICH_HAVE_MPI
  int finalized = 0, initialized = 0;
  MPI_Finalized(&finalized);
  ICH_CHECK(!finalized,
            "MPI was already finalised in this process; create one Communicator "
            "per process and keep it for the whole run");
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    // Only the thread that made the Communicator calls MPI (OpenMP threads never do).
    ICH_CHECK(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided) == MPI_SUCCESS,
              "MPI_Init_thread failed: is this process started by a matching mpirun?");
    impl_->initialised_here = true;
  }
  // A private communicator whose errors come back as return codes, so a failure becomes an
  // ich::Error with a message instead of MPI's default abort.
  MPI_Comm_dup(MPI_COMM_WORLD, &impl_->comm);
  MPI_Comm_set_errhandler(impl_->comm, MPI_ERRORS_RETURN);
  MPI_Comm_rank(impl_->comm, &rank_);
  MPI_Comm_size(impl_->comm, &size_);
#else
  const char* world = env_or_null("OMPI_COMM_WORLD_SIZE");
  if (!world) world = env_or_null("PMI_SIZE");
  ICH_CHECK(!world || std::atoi(world) <= 1,
            "this ichseg was built without MPI (ICH_MPI=OFF) but runs under mpirun with "
                << world << " ranks; rebuild with -DICH_MPI=ON or run a single process");
#endif
}

Communicator::~Communicator() {
#ifdef ICH_HAVE_MPI
  if (impl_->comm == MPI_COMM_NULL) return;
  if (size_ > 1 && (failed_ || std::uncaught_exceptions() > 0)) {
    // Other ranks may be waiting in a collective this rank will never join: end the job
    // now rather than leave them to their own deadline.
    std::fprintf(stderr, "rank %d: leaving on an error; aborting the MPI job\n", rank_);
    std::fflush(stderr);
    MPI_Abort(MPI_COMM_WORLD, 1);
  }
  MPI_Comm_free(&impl_->comm);
  if (impl_->initialised_here) MPI_Finalize();
#endif
}

void Communicator::set_timeout_s(double seconds) {
  ICH_CHECK(seconds > 0, "the MPI timeout must be > 0 seconds, got " << seconds);
  timeout_s_ = seconds;
}

void Communicator::fail(const std::string& what) {
  failed_ = true;
  ICH_FAIL("rank " << rank_ << ": " << what);
}

void Communicator::check_mpi(int code, const char* call) {
#ifdef ICH_HAVE_MPI
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(code, text, &length);
  fail(std::string(call) + " failed: " + std::string(text, size_t(length)) +
       " (a rank died or the network failed)");
#else
  (void)code;
  (void)call;
#endif
}

// Polls a request until it completes; throws once timeout_s has passed. Spinning keeps
// latency low for short waits; after that the thread sleeps between polls so a waiting rank
// leaves the cores to the ranks still computing (mpirun --oversubscribe on few cores).
void Communicator::wait(void* request, void* status, const char* what) {
#ifdef ICH_HAVE_MPI
  auto* req = static_cast<MPI_Request*>(request);
  auto* st = status ? static_cast<MPI_Status*>(status) : MPI_STATUS_IGNORE;
  const auto start = std::chrono::steady_clock::now();
  const auto deadline = start + std::chrono::duration<double>(timeout_s_);
  for (int polls = 0;; ++polls) {
    int done = 0;
    check_mpi(MPI_Test(req, &done, st), what);
    if (done) return;
    if (polls > 2000) {
      if (std::chrono::steady_clock::now() > deadline) {
        std::ostringstream msg;
        msg << "no answer from the other ranks within " << timeout_s_ << " s during " << what
            << " (a rank died or hangs; the timeout is an option)";
        fail(msg.str());
      }
      std::this_thread::sleep_for(std::chrono::microseconds(polls > 20000 ? 500 : 50));
    }
  }
#else
  (void)request;
  (void)status;
  (void)what;
#endif
}

void Communicator::barrier() {
  if (size_ == 1) return;
#ifdef ICH_HAVE_MPI
  MPI_Request req;
  check_mpi(MPI_Ibarrier(impl_->comm, &req), "MPI_Ibarrier");
  wait(&req, nullptr, "a barrier");
#endif
}

void Communicator::allreduce_sum(float* data, int64_t count) {
  if (size_ == 1 || count == 0) return;
  ICH_CHECK(count <= std::numeric_limits<int>::max(),
            "an all-reduce of " << count << " floats is too large for one MPI call");
#ifdef ICH_HAVE_MPI
  MPI_Request req;
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, int(count), MPI_FLOAT, MPI_SUM, impl_->comm, &req),
            "MPI_Iallreduce");
  wait(&req, nullptr, "a gradient all-reduce");
#else
  (void)data;
#endif
}

void Communicator::allreduce_sum(double* data, int64_t count) {
  if (size_ == 1 || count == 0) return;
  ICH_CHECK(count <= std::numeric_limits<int>::max(),
            "an all-reduce of " << count << " doubles is too large for one MPI call");
#ifdef ICH_HAVE_MPI
  MPI_Request req;
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, data, int(count), MPI_DOUBLE, MPI_SUM, impl_->comm, &req),
            "MPI_Iallreduce");
  wait(&req, nullptr, "an all-reduce of training statistics");
#else
  (void)data;
#endif
}

void Communicator::allgather(const double* mine, int64_t count, double* all) {
  if (count == 0) return;
  if (size_ == 1) {
    std::copy(mine, mine + count, all);
    return;
  }
  ICH_CHECK(count <= std::numeric_limits<int>::max(),
            "an all-gather of " << count << " doubles is too large for one MPI call");
#ifdef ICH_HAVE_MPI
  MPI_Request req;
  check_mpi(
      MPI_Iallgather(mine, int(count), MPI_DOUBLE, all, int(count), MPI_DOUBLE, impl_->comm, &req),
      "MPI_Iallgather");
  wait(&req, nullptr, "a synchronised BatchNorm exchange");
#endif
}

void Communicator::broadcast_string(std::string* text, int root) {
  if (size_ == 1) return;
  uint64_t length = rank_ == root ? uint64_t(text->size()) : 0;
  broadcast(&length, sizeof length, root);
  if (rank_ != root) text->assign(size_t(length), '\0');
  broadcast(text->data(), size_t(length), root);
}

void Communicator::broadcast(void* data, size_t bytes, int root) {
  ICH_CHECK(root >= 0 && root < size_, "broadcast root " << root << " is not a rank of " << size_);
  if (size_ == 1 || bytes == 0) return;
  ICH_CHECK(bytes <= size_t(std::numeric_limits<int>::max()),
            "a broadcast of " << bytes << " bytes is too large for one MPI call");
#ifdef ICH_HAVE_MPI
  MPI_Request req;
  check_mpi(MPI_Ibcast(data, int(bytes), MPI_BYTE, root, impl_->comm, &req), "MPI_Ibcast");
  wait(&req, nullptr, "a broadcast");
#else
  (void)data;
#endif
}

void Communicator::send(const void* data, size_t bytes, int dest, int tag) {
  ICH_CHECK(size_ > 1, "send needs at least 2 ranks; start the run with mpirun -np N");
  ICH_CHECK(dest >= 0 && dest < size_ && dest != rank_,
            "rank " << rank_ << " cannot send to rank " << dest << " of " << size_);
  ICH_CHECK(bytes <= size_t(std::numeric_limits<int>::max()),
            "a message of " << bytes << " bytes is too large for one MPI call");
#ifdef ICH_HAVE_MPI
  MPI_Request req;
  check_mpi(MPI_Isend(data, int(bytes), MPI_BYTE, dest, tag, impl_->comm, &req), "MPI_Isend");
  wait(&req, nullptr, "a send");
#else
  (void)data;
  (void)tag;
#endif
}

Communicator::Received Communicator::recv(void* data, size_t capacity, int source, int tag) {
  ICH_CHECK(size_ > 1, "recv needs at least 2 ranks; start the run with mpirun -np N");
  ICH_CHECK(source == kAnySource || (source >= 0 && source < size_ && source != rank_),
            "rank " << rank_ << " cannot receive from rank " << source << " of " << size_);
  ICH_CHECK(capacity <= size_t(std::numeric_limits<int>::max()),
            "a message of " << capacity << " bytes is too large for one MPI call");
  Received got;
#ifdef ICH_HAVE_MPI
  MPI_Request req;
  MPI_Status status;
  check_mpi(MPI_Irecv(data, int(capacity), MPI_BYTE, source == kAnySource ? MPI_ANY_SOURCE : source,
                      tag, impl_->comm, &req),
            "MPI_Irecv");
  wait(&req, &status, "a receive");
  int count = 0;
  MPI_Get_count(&status, MPI_BYTE, &count);
  got.source = status.MPI_SOURCE;
  got.bytes = size_t(count);
#else
  (void)data;
  (void)tag;
#endif
  return got;
}

void Communicator::abort(const std::string& message, int code) {
  const std::string prefix = "rank " + std::to_string(rank_) + ": ";
  // Errors thrown by fail() already name the rank.
  const bool named = message.compare(0, prefix.size(), prefix) == 0;
  std::fprintf(stderr, "%s%s\n", named ? "" : prefix.c_str(), message.c_str());
  std::fflush(stderr);
#ifdef ICH_HAVE_MPI
  if (impl_->comm != MPI_COMM_NULL) MPI_Abort(MPI_COMM_WORLD, code);
#endif
  std::_Exit(code);
}

// ---- broadcast of the model

void broadcast_parameters(Module& model, Communicator& comm) {
  if (comm.size() == 1) return;
  const NamedTensors state = model.state_dict();
  std::vector<uint8_t> host(total_bytes(state));
  if (comm.is_root()) pack_tensors(state, host.data());
  comm.broadcast(host.data(), host.size(), 0);
  if (comm.is_root()) return;
  // Through load_state_dict, so modules with host mirrors of their buffers (BatchNorm's
  // batch count) see the new values.
  std::map<std::string, Tensor> loaded;
  const uint8_t* src = host.data();
  for (const auto& [name, t] : state) {
    Tensor copy = Tensor::empty(t.shape(), Device::cpu(), t.dtype());
    std::memcpy(copy.raw_data(), src, t.nbytes());
    src += t.nbytes();
    loaded.emplace(name, copy);
  }
  model.load_state_dict(loaded);
}

// ---- GradientBucketer

GradientBucketer::GradientBucketer(std::vector<Tensor> params, size_t bucket_bytes)
    : params_(std::move(params)) {
  ICH_CHECK(bucket_bytes >= sizeof(float), "the gradient bucket size must be at least 4 bytes");
  const int64_t bucket_floats = int64_t(bucket_bytes / sizeof(float));
  for (size_t i = 0; i < params_.size(); ++i) {
    const Tensor& p = params_[i];
    ICH_CHECK(p.dtype() == DType::f32,
              "data-parallel training needs float32 parameters, got " << p.describe());
    if (buckets_.empty() ||
        (buckets_.back().numel > 0 && buckets_.back().numel + p.numel() > bucket_floats)) {
      buckets_.emplace_back();
    }
    Bucket& b = buckets_.back();
    b.entries.push_back({i, b.numel, p.numel()});
    b.numel += p.numel();
  }
  int64_t largest = 0;
  for (const Bucket& b : buckets_) largest = std::max(largest, b.numel);
  host_.resize(size_t(largest));
}

void GradientBucketer::allreduce_average(Communicator& comm) {
  if (comm.size() == 1) return;
  const float inv_size = 1.0f / float(comm.size());
  for (const Bucket& bucket : buckets_) {
    for (const Entry& e : bucket.entries) pack_grads({params_[e.param]}, host_.data() + e.offset);
    comm.allreduce_sum(host_.data(), bucket.numel);
    for (int64_t i = 0; i < bucket.numel; ++i) host_[size_t(i)] *= inv_size;
    for (const Entry& e : bucket.entries)
      set_grad_from_host(params_[e.param], host_.data() + e.offset);
  }
}

// ---- DistributedSampler

DistributedSampler::DistributedSampler(int64_t dataset_size, int rank, int world, uint64_t seed,
                                       bool shuffle, Tail tail)
    : n_(dataset_size), rank_(rank), world_(world), seed_(seed), shuffle_(shuffle), tail_(tail) {
  ICH_CHECK(world >= 1 && rank >= 0 && rank < world,
            "rank " << rank << " is not a rank of a world of " << world);
  ICH_CHECK(dataset_size >= world, "a dataset of " << dataset_size
                                                   << " samples cannot be shared by " << world
                                                   << " ranks (each needs at least one)");
  per_rank_ = tail == Tail::drop ? n_ / world : (n_ + world - 1) / world;
}

std::vector<int64_t> DistributedSampler::epoch_order(int64_t epoch) const {
  std::vector<int64_t> order(static_cast<size_t>(n_));
  for (int64_t i = 0; i < n_; ++i) order[size_t(i)] = i;
  if (!shuffle_) return order;
  // Fisher-Yates from the back; draw i uses Philox index (epoch, i) under the run's seed.
  const uint64_t base = uint64_t(epoch) << 32;
  for (int64_t i = n_ - 1; i > 0; --i) {
    const Philox4 r = philox4x32_10(base + uint64_t(i), seed_);
    const uint64_t wide = (uint64_t(r.v[0]) << 32) | r.v[1];
    const int64_t j = int64_t(wide % uint64_t(i + 1));
    std::swap(order[size_t(i)], order[size_t(j)]);
  }
  return order;
}

std::vector<int64_t> DistributedSampler::indices(int64_t epoch) const {
  const std::vector<int64_t> order = epoch_order(epoch);
  std::vector<int64_t> mine;
  mine.reserve(size_t(per_rank_));
  for (int64_t k = 0; k < per_rank_; ++k) {
    const int64_t position = rank_ + k * world_;  // < n_ for drop, may wrap for pad
    mine.push_back(order[size_t(position % n_)]);
  }
  return mine;
}

// ---- parameter server

ParameterServer::ParameterServer(Module& model, Adam& adam, Communicator& comm,
                                 int64_t staleness_bound)
    : model_(model), adam_(adam), comm_(comm), staleness_bound_(staleness_bound) {
  ICH_CHECK(comm.is_root(), "the parameter server runs on rank 0, not on rank " << comm.rank());
  ICH_CHECK(comm.size() >= 2,
            "asynchronous training needs rank 0 as the parameter server and at "
            "least one worker: start it with mpirun -np 2 or more");
}

AsyncStats ParameterServer::serve(const std::function<void(int64_t, const PushStats&)>& on_update) {
  const NamedTensors params = model_.named_parameters();
  const NamedTensors buffers = model_.named_buffers();
  std::vector<Tensor> param_list;
  for (const auto& [name, p] : params) param_list.push_back(p);
  const int64_t param_floats = total_numel(param_list);
  const size_t push_bytes = kPushHeaderWords * sizeof(int64_t) + sizeof(PushStats) +
                            size_t(param_floats) * sizeof(float) + total_bytes(buffers);
  std::vector<uint8_t> push(push_bytes);
  std::vector<uint8_t> reply(kWeightsHeaderWords * sizeof(int64_t) + total_bytes(params));

  AsyncStats stats;
  double staleness_sum = 0.0;
  int workers_left = comm_.size() - 1;
  while (workers_left > 0) {
    const Communicator::Received got =
        comm_.recv(push.data(), push.size(), Communicator::kAnySource, kPushTag);
    int64_t header[kPushHeaderWords];
    ICH_CHECK(got.bytes >= sizeof header, "rank " << got.source << " sent a push of " << got.bytes
                                                  << " bytes, shorter than a header");
    std::memcpy(header, push.data(), sizeof header);
    if (header[0] == kPushDone) {
      --workers_left;
      continue;
    }
    ICH_CHECK(header[0] == kPushGradients && got.bytes == push_bytes,
              "rank " << got.source << " sent a push of kind " << header[0] << " and " << got.bytes
                      << " bytes, expected gradients of " << push_bytes
                      << " bytes: do all ranks build the same model?");
    const int64_t staleness = version_ - header[1];
    const bool accepted = staleness_bound_ < 0 || staleness <= staleness_bound_;
    PushStats push_stats;
    std::memcpy(push_stats.data(), push.data() + sizeof header, sizeof push_stats);
    if (accepted) {
      const float* grads =
          reinterpret_cast<const float*>(push.data() + sizeof header + sizeof push_stats);
      for (Tensor& p : param_list) {
        set_grad_from_host(p, grads);
        grads += p.numel();
      }
      // The worker's BatchNorm statistics become the server's, so rank 0's checkpoints hold
      // statistics of a training rank (written raw: the server never runs a training forward,
      // so BatchNorm's host batch counter is not used here).
      unpack_into(buffers, reinterpret_cast<const uint8_t*>(grads));
      adam_.step();
      ++version_;
      ++stats.updates;
      stats.max_staleness = std::max(stats.max_staleness, staleness);
      staleness_sum += double(staleness);
    } else {
      ++stats.rejected;
    }
    const int64_t answer[kWeightsHeaderWords] = {version_, accepted ? 1 : 0};
    std::memcpy(reply.data(), answer, sizeof answer);
    pack_tensors(params, reply.data() + sizeof answer);
    comm_.send(reply.data(), reply.size(), got.source, kWeightsTag);
    if (accepted && on_update) on_update(version_, push_stats);
  }
  stats.mean_staleness = stats.updates ? staleness_sum / double(stats.updates) : 0.0;
  return stats;
}

AsyncWorker::AsyncWorker(Module& model, Communicator& comm) : model_(model), comm_(comm) {
  ICH_CHECK(!comm.is_root() && comm.size() >= 2,
            "an asynchronous worker runs on ranks 1..N-1 of an mpirun job, not on rank "
                << comm.rank() << " of " << comm.size());
}

bool AsyncWorker::push_and_pull(const PushStats& stats) {
  const NamedTensors params = model_.named_parameters();
  const NamedTensors buffers = model_.named_buffers();
  std::vector<Tensor> param_list;
  for (const auto& [name, p] : params) param_list.push_back(p);
  const int64_t param_floats = total_numel(param_list);

  std::vector<uint8_t> push(kPushHeaderWords * sizeof(int64_t) + sizeof(PushStats) +
                            size_t(param_floats) * sizeof(float) + total_bytes(buffers));
  const int64_t header[kPushHeaderWords] = {kPushGradients, version_};
  std::memcpy(push.data(), header, sizeof header);
  std::memcpy(push.data() + sizeof header, stats.data(), sizeof stats);
  float* grads = reinterpret_cast<float*>(push.data() + sizeof header + sizeof stats);
  pack_tensors(buffers, reinterpret_cast<uint8_t*>(pack_grads(param_list, grads)));
  comm_.send(push.data(), push.size(), 0, kPushTag);

  std::vector<uint8_t> reply(kWeightsHeaderWords * sizeof(int64_t) + total_bytes(params));
  const Communicator::Received got = comm_.recv(reply.data(), reply.size(), 0, kWeightsTag);
  ICH_CHECK(got.bytes == reply.size(), "the parameter server sent "
                                           << got.bytes << " bytes of weights, expected "
                                           << reply.size());
  int64_t answer[kWeightsHeaderWords];
  std::memcpy(answer, reply.data(), sizeof answer);
  unpack_into(params, reply.data() + sizeof answer);
  version_ = answer[0];
  return answer[1] == 1;
}

void AsyncWorker::finish() {
  const int64_t header[kPushHeaderWords] = {kPushDone, version_};
  comm_.send(header, sizeof header, 0, kPushTag);
}

}  // namespace ich
