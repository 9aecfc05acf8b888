// The asynchronous parameter server and its workers (engine/parameter_server.h).
#include "engine/parameter_server.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "core/error.h"
#include "engine/host_pack.h"

namespace ich {

namespace {

// Tags of the parameter-server protocol.
constexpr int kPushTag = 101;
constexpr int kWeightsTag = 102;

// Message headers, int64 words in front of the payload.
enum PushKind : int64_t { kPushGradients = 1, kPushDone = 2 };
// kind, version the gradient was computed on, then kPushStatsWords doubles (PushStats)
constexpr size_t kPushHeaderWords = 2;
constexpr size_t kWeightsHeaderWords = 2;  // server version, 1 when the push was applied

// The model's tensors as the two messages carry them: a push (header, PushStats, every
// parameter's grad as float32, the buffers) and a reply (header, the parameters).
struct ModelMessages {
  NamedTensors params, buffers;
  std::vector<Tensor> param_list;
  size_t push_bytes = 0, reply_bytes = 0;

  explicit ModelMessages(Module& model)
      : params(model.named_parameters()), buffers(model.named_buffers()) {
    for (const auto& [name, p] : params) param_list.push_back(p);
    push_bytes = kPushHeaderWords * sizeof(int64_t) + sizeof(PushStats) +
                 size_t(total_numel(param_list)) * sizeof(float) + total_bytes(buffers);
    reply_bytes = kWeightsHeaderWords * sizeof(int64_t) + total_bytes(params);
  }
};

}  // namespace

ParameterServer::ParameterServer(Module& model, Adam& adam, ProcessGroup& group,
                                 int64_t staleness_bound)
    : model_(model), adam_(adam), group_(group), staleness_bound_(staleness_bound) {
  ICH_CHECK(group.is_root(), "the parameter server runs on rank 0, not on rank " << group.rank());
  ICH_CHECK(group.size() >= 2,
            "asynchronous training needs rank 0 as the parameter server and at "
            "least one worker: start it with mpirun -np 2 or more");
}

AsyncStats ParameterServer::serve(const std::function<void(int64_t, const PushStats&)>& on_update) {
  ModelMessages m(model_);
  const size_t push_bytes = m.push_bytes;
  std::vector<uint8_t> push(push_bytes);
  std::vector<uint8_t> reply(m.reply_bytes);

  AsyncStats stats;
  double staleness_sum = 0.0;
  int workers_left = group_.size() - 1;
  while (workers_left > 0) {
    const ProcessGroup::Received got =
        group_.recv(push.data(), push.size(), ProcessGroup::kAnySource, kPushTag);
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
      for (Tensor& p : m.param_list) {
        set_grad_from_host(p, grads);
        grads += p.numel();
      }
      // The worker's BatchNorm statistics become the server's, so rank 0's checkpoints hold
      // statistics of a training rank (written raw: the server never runs a training forward,
      // so BatchNorm's host batch counter is not used here).
      unpack_into(m.buffers, reinterpret_cast<const uint8_t*>(grads));
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
    pack_tensors(m.params, reply.data() + sizeof answer);
    group_.send(reply.data(), reply.size(), got.source, kWeightsTag);
    if (accepted && on_update) on_update(version_, push_stats);
  }
  stats.mean_staleness = stats.updates ? staleness_sum / double(stats.updates) : 0.0;
  return stats;
}

AsyncWorker::AsyncWorker(Module& model, ProcessGroup& group) : model_(model), group_(group) {
  ICH_CHECK(!group.is_root() && group.size() >= 2,
            "an asynchronous worker runs on ranks 1..N-1 of an mpirun job, not on rank "
                << group.rank() << " of " << group.size());
}

bool AsyncWorker::push_and_pull(const PushStats& stats) {
  ModelMessages m(model_);
  std::vector<uint8_t> push(m.push_bytes);
  const int64_t header[kPushHeaderWords] = {kPushGradients, version_};
  std::memcpy(push.data(), header, sizeof header);
  std::memcpy(push.data() + sizeof header, stats.data(), sizeof stats);
  float* grads = reinterpret_cast<float*>(push.data() + sizeof header + sizeof stats);
  pack_tensors(m.buffers, reinterpret_cast<uint8_t*>(pack_grads(m.param_list, grads)));
  group_.send(push.data(), push.size(), 0, kPushTag);

  std::vector<uint8_t> reply(m.reply_bytes);
  const ProcessGroup::Received got = group_.recv(reply.data(), reply.size(), 0, kWeightsTag);
  ICH_CHECK(got.bytes == reply.size(), "the parameter server sent "
                                           << got.bytes << " bytes of weights, expected "
                                           << reply.size());
  int64_t answer[kWeightsHeaderWords];
  std::memcpy(answer, reply.data(), sizeof answer);
  unpack_into(m.params, reply.data() + sizeof answer);
  version_ = answer[0];
  return answer[1] == 1;
}

void AsyncWorker::finish() {
  const int64_t header[kPushHeaderWords] = {kPushDone, version_};
  group_.send(header, sizeof header, 0, kPushTag);
}

}  // namespace ich
