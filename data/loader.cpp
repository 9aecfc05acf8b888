#include "data/loader.h"

#include <algorithm>
#include <cmath>
#include <tuple>

#include "core/error.h"
#include "data/sampler.h"

namespace ich::data {

namespace {

// Patch origins along one side: 0, stride, ... and a last one ending at the border.
std::vector<int> patch_origins(int length, int patch, int stride) {
  std::vector<int> origins;
  for (int o = 0; o + patch <= length; o += stride) origins.push_back(o);
  if (origins.back() + patch < length) origins.push_back(length - patch);
  return origins;
}

}  // namespace

BatchLoader::BatchLoader(std::shared_ptr<const SliceSource> source, const LoaderOptions& options)
    : source_(std::move(source)), options_(options) {
  ICH_CHECK(source_ && source_->size() > 0, "the loader has no slices to read");
  ICH_CHECK(options_.batch_size >= 1,
            "batch size " << options_.batch_size << " must be at least 1");
  ICH_CHECK(options_.prefetch >= 1, "prefetch " << options_.prefetch << " must be at least 1");
  ICH_CHECK(options_.patch >= 0, "patch size " << options_.patch << " must be >= 0");
  ICH_CHECK(options_.shards >= 1 && options_.shard >= 0 && options_.shard < options_.shards,
            "loader shard " << options_.shard << " is not one of " << options_.shards << " shards");
  ICH_CHECK(options_.augment.elastic_grid >= 2,
            "the elastic grid needs at least 2 points per side");
  if (options_.patch == 0) {
    // Whole slices: the size of the first one; the others are checked as they are loaded.
    Image8 mask;
    source_->load_mask(0, &mask);
    whole_w_ = mask.w;
    whole_h_ = mask.h;
    samples_per_epoch_ = shard_positions(source_->size(), 0).size();
  } else {
    ICH_CHECK(options_.stride >= 1, "patch stride " << options_.stride << " must be at least 1");
    Image8 mask;
    for (size_t i = 0; i < source_->size(); ++i) {
      source_->load_mask(i, &mask);
      ICH_CHECK(mask.w >= options_.patch && mask.h >= options_.patch,
                source_->id(i).name << " is " << mask.w << "x" << mask.h << ", smaller than the "
                                    << options_.patch << "x" << options_.patch << " patches");
      // Integral image of the mask (h+1, w+1): any patch's pixel count in four reads.
      std::vector<int64_t> integral(size_t(mask.w + 1) * (mask.h + 1), 0);
      for (int r = 0; r < mask.h; ++r) {
        int64_t row = 0;
        for (int c = 0; c < mask.w; ++c) {
          row += mask.pixels[size_t(r) * mask.w + c] ? 1 : 0;
          integral[size_t(r + 1) * (mask.w + 1) + c + 1] =
              integral[size_t(r) * (mask.w + 1) + c + 1] + row;
        }
      }
      const int stride_w = mask.w + 1;
      for (int y : patch_origins(mask.h, options_.patch, options_.stride)) {
        for (int x : patch_origins(mask.w, options_.patch, options_.stride)) {
          const int y1 = y + options_.patch, x1 = x + options_.patch;
          const int64_t count =
              integral[size_t(y1) * stride_w + x1] - integral[size_t(y) * stride_w + x1] -
              integral[size_t(y1) * stride_w + x] + integral[size_t(y) * stride_w + x];
          (count > 0 ? positives_ : negatives_).push_back({static_cast<uint32_t>(i), x, y});
        }
      }
    }
    samples_per_epoch_ = shard_positions(epoch_samples(0).size(), 0).size();
  }
}

BatchLoader::~BatchLoader() {
  stop();
}

size_t BatchLoader::batches_per_epoch() const {
  const size_t b = static_cast<size_t>(options_.batch_size);
  return options_.drop_last ? samples_per_epoch_ / b : (samples_per_epoch_ + b - 1) / b;
}

std::vector<BatchLoader::Sample> BatchLoader::epoch_samples(int epoch) const {
  std::vector<Sample> samples;
  if (options_.patch == 0) {
    for (size_t i = 0; i < source_->size(); ++i)
      samples.push_back({static_cast<uint32_t>(i), 0, 0});
  } else {
    samples = positives_;
    std::vector<Sample> negatives = negatives_;
    size_t keep = negatives.size();
    if (!positives_.empty() && options_.negatives_per_positive >= 0) {
      keep = std::min(keep, static_cast<size_t>(
                                std::llround(options_.negatives_per_positive * positives_.size())));
    }
    // A partial Fisher-Yates shuffle picks `keep` negatives uniformly.
    Rng pick(mix({options_.seed, uint64_t(epoch), 2}));
    for (size_t i = 0; i < keep; ++i)
      std::swap(negatives[i], negatives[i + pick.below(negatives.size() - i)]);
    negatives.resize(keep);
    if (!options_.shuffle) {
      std::sort(negatives.begin(), negatives.end(), [](const Sample& a, const Sample& b) {
        return std::make_tuple(a.slice, a.y0, a.x0) < std::make_tuple(b.slice, b.y0, b.x0);
      });
    }
    samples.insert(samples.end(), negatives.begin(), negatives.end());
  }
  if (options_.shuffle) {
    Rng order(mix({options_.seed, uint64_t(epoch), 1}));
    for (size_t i = samples.size(); i > 1; --i) std::swap(samples[i - 1], samples[order.below(i)]);
  }
  return samples;
}

std::vector<size_t> BatchLoader::shard_positions(size_t epoch_size, int epoch) const {
  std::vector<size_t> positions;
  if (options_.shards == 1) {
    positions.resize(epoch_size);
    for (size_t i = 0; i < epoch_size; ++i) positions[i] = i;
    return positions;
  }
  ICH_CHECK(epoch_size >= size_t(options_.shards),
            "an epoch of " << epoch_size << " samples cannot be shared by " << options_.shards
                           << " ranks x micro-batches (each needs at least one sample): use "
                              "fewer ranks or --accumulate, or more data");
  // Unshuffled: the epoch order is already shuffled, the same on every shard.
  const DistributedSampler sampler(int64_t(epoch_size), options_.shard, options_.shards,
                                   options_.seed, /*shuffle=*/false);
  for (int64_t p : sampler.indices(epoch)) positions.push_back(size_t(p));
  return positions;
}

void BatchLoader::make_batch(const std::vector<Sample>& samples,
                             const std::vector<size_t>& positions, size_t first, size_t count,
                             int epoch, Batch* batch) const {
  const int h = options_.patch ? options_.patch : whole_h_;
  const int w = options_.patch ? options_.patch : whole_w_;
  batch->n = static_cast<int>(count);
  batch->h = h;
  batch->w = w;
  const size_t plane = size_t(h) * w;
  batch->images.resize(count * plane);
  batch->masks.resize(count * plane);
  batch->ids.resize(count);
  batch->x0.resize(count);
  batch->y0.resize(count);
  Image8 image, mask;
  for (size_t b = 0; b < count; ++b) {
    const size_t position = positions[first + b];
    const Sample& s = samples[position];
    source_->load(s.slice, &image, &mask);
    const SliceId& id = source_->id(s.slice);
    if (!options_.patch) {
      ICH_CHECK(image.w == w && image.h == h,
                id.name << " is " << image.w << "x" << image.h << " but the first slice is " << w
                        << "x" << h << "; whole-slice batches need one size (use patches)");
    }
    Rng rng(mix({options_.seed, uint64_t(epoch), 3, position}));
    augment_crop(image, mask, s.x0, s.y0, w, h, options_.augment, rng,
                 batch->images.data() + b * plane, batch->masks.data() + b * plane);
    batch->ids[b] = id;
    batch->x0[b] = s.x0;
    batch->y0[b] = s.y0;
  }
}

void BatchLoader::produce(int epoch) {
  try {
    const std::vector<Sample> samples = epoch_samples(epoch);
    const std::vector<size_t> positions = shard_positions(samples.size(), epoch);
    const size_t bs = static_cast<size_t>(options_.batch_size);
    const size_t n_batches = batches_per_epoch();
    for (size_t k = 0; k < n_batches; ++k) {
      {
        std::unique_lock<std::mutex> lock(mutex_);
        changed_.wait(lock, [&] { return stopping_ || ready_.size() < size_t(options_.prefetch); });
        if (stopping_) return;
      }
      Batch batch;
      make_batch(samples, positions, k * bs, std::min(bs, positions.size() - k * bs), epoch,
                 &batch);
      std::lock_guard<std::mutex> lock(mutex_);
      ready_.push_back(std::move(batch));
      changed_.notify_all();
    }
  } catch (...) {
    std::lock_guard<std::mutex> lock(mutex_);
    error_ = std::current_exception();
  }
  std::lock_guard<std::mutex> lock(mutex_);
  finished_ = true;
  changed_.notify_all();
}

void BatchLoader::stop() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stopping_ = true;
    changed_.notify_all();
  }
  if (worker_.joinable()) worker_.join();
}

void BatchLoader::start_epoch(int epoch) {
  stop();
  std::lock_guard<std::mutex> lock(mutex_);
  ready_.clear();
  error_ = nullptr;
  stopping_ = false;
  finished_ = false;
  started_ = true;
  worker_ = std::thread(&BatchLoader::produce, this, epoch);
}

bool BatchLoader::next(Batch* batch) {
  std::unique_lock<std::mutex> lock(mutex_);
  ICH_CHECK(started_, "BatchLoader::next called before start_epoch");
  changed_.wait(lock, [&] { return !ready_.empty() || finished_ || error_; });
  if (ready_.empty()) {
    if (!error_) return false;
    // The batches made before the failure were delivered; now the failure itself.
    std::exception_ptr e = error_;
    error_ = nullptr;
    std::rethrow_exception(e);
  }
  *batch = std::move(ready_.front());
  ready_.pop_front();
  changed_.notify_all();
  return true;
}

}  // namespace ich::data
