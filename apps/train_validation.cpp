#include "apps/train_validation.h"

#include <algorithm>
#include <cstdio>

#include "apps/figures.h"
#include "apps/predictor.h"
#include "core/error.h"
#include "engine/autograd.h"
#include "engine/metrics.h"
#include "engine/process_group.h"

namespace fs = std::filesystem;

namespace ich::app {

Tensor training_loss(const std::string& loss, const Tensor& p, const Tensor& t) {
  if (loss == "dice") return soft_dice_loss(p, t);
  if (loss == "bce") return bce_loss(p, t);
  return dice_bce_loss(p, t);
}

namespace {

void write_panels(const data::SliceSource& source, const std::vector<size_t>& ids,
                  const std::vector<size_t>& display, const std::vector<float>& images,
                  const std::vector<float>& truths, const std::vector<float>& probs, int h, int w,
                  const fs::path& samples_dir, int epoch) {
  const size_t plane = size_t(h) * w;
  for (size_t k = 0; k < ids.size(); ++k) {
    if (!std::binary_search(display.begin(), display.end(), ids[k])) continue;
    char name[64];
    std::snprintf(name, sizeof name, "epoch_%03d_", epoch);
    const data::Image8 panel = sample_panel(images.data() + k * plane, truths.data() + k * plane,
                                            probs.data() + k * plane, h, w);
    const std::string stem = fs::path(source.id(ids[k]).name).stem().string();
    data::write_png((samples_dir / (name + stem + ".png")).string(), panel);
  }
}

}  // namespace

ValidationResult validate(Unet& net, const Device& device, const data::SliceSource& source,
                          const TrainConfig& config, const std::vector<size_t>& display,
                          const fs::path& samples_dir, int epoch, ProcessGroup* comm) {
  const int rank = comm ? comm->rank() : 0, world = comm ? comm->size() : 1;
  net.eval();
  InferenceOptions io;  // whole slices, also after patch training (the net is convolutional)
  io.batch = config.batch;
  // loss * slices, Dice sum, Jaccard sum, slices
  double sums[4] = {0, 0, 0, 0};
  data::Image8 image, mask;
  size_t i = 0;
  for (int64_t chunk = 0; i < source.size(); ++chunk) {
    // A chunk: up to `batch` consecutive slices of one size (the same cut on every rank).
    const size_t first = i;
    int h = 0, w = 0;
    std::vector<size_t> ids;
    while (i < source.size() && int(ids.size()) < config.batch) {
      source.load_mask(i, &mask);
      if (!ids.empty() && (mask.w != w || mask.h != h)) break;
      w = mask.w;
      h = mask.h;
      ids.push_back(i++);
    }
    const bool mine = chunk % world == rank;
    bool shows_sample = false;
    if (rank == 0)
      for (size_t id : ids) shows_sample |= std::binary_search(display.begin(), display.end(), id);
    if (!mine && !shows_sample) continue;
    std::vector<float> images, truths;  // (n, h, w)
    for (size_t k = first; k < i; ++k) {
      source.load(k, &image, &mask);
      ICH_CHECK(image.w == w && image.h == h, source.id(k).name << " is " << image.w << "x"
                                                                << image.h << " but its mask is "
                                                                << w << "x" << h);
      for (uint8_t v : image.pixels) images.push_back(v / 255.0f);
      for (uint8_t v : mask.pixels) truths.push_back(v ? 1.0f : 0.0f);
    }
    const int n = static_cast<int>(ids.size());
    const std::vector<float> probs = predict_images(net, device, images.data(), n, h, w, io);
    const size_t plane = size_t(h) * w;
    if (mine) {
      NoGradGuard no_grad;
      const Tensor p = Tensor::from_host(probs, {n, 1, h, w});
      const Tensor t = Tensor::from_host(truths, {n, 1, h, w});
      sums[0] += double(training_loss(config.loss, p, t).item()) * n;
      for (int k = 0; k < n; ++k) {
        const SegmentationMetrics m =
            segmentation_metrics(probs.data() + k * plane, truths.data() + k * plane, plane);
        sums[1] += m.dice;
        sums[2] += m.jaccard;
      }
      sums[3] += n;
    }
    if (shows_sample)
      write_panels(source, ids, display, images, truths, probs, h, w, samples_dir, epoch);
  }
  if (comm) comm->allreduce_sum(sums, 4);
  net.train();
  ValidationResult r;
  r.slices = size_t(sums[3]);
  r.loss = sums[0] / sums[3];
  r.dice = sums[1] / sums[3];
  r.jaccard = sums[2] / sums[3];
  return r;
}

}  // namespace ich::app
