// Finite-difference gradient checks of every differentiable op through autograd, of a
// composite chain shaped like a U-Net level, and proof that a wrong rule is caught.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <utility>

#include "engine_test_util.h"

using namespace ich;
using ich::test::gradcheck_op;
using ich::test::GradCheckOptions;
using ich::test::GradCheckResult;
using ich::test::OpInput;
using ich::test::random_values;

namespace {

int64_t numel(const Shape& s) {
  return shape_numel(s);
}

OpInput input(const Shape& shape, uint64_t seed, float lo = -1.0f, float hi = 1.0f) {
  return {shape, random_values(static_cast<size_t>(numel(shape)), seed, lo, hi), true};
}

OpInput constant(const Shape& shape, std::vector<float> values) {
  return {shape, values, false};
}

GradCheckOptions step_and_threshold(double step, double threshold) {
  GradCheckOptions o;
  o.step = step;
  o.threshold = threshold;
  return o;
}

void require_all_ok(const std::vector<GradCheckResult>& results) {
  REQUIRE_FALSE(results.empty());
  for (size_t k = 0; k < results.size(); ++k) {
    INFO("differentiable input " << k << ": " << results[k].first_failure << " (checked "
                                 << results[k].checked << ", worst " << results[k].worst_error
                                 << ")");
    CHECK(results[k].ok());
  }
}

}  // namespace

TEST_CASE("gradcheck: conv2d with bias, padding 1 and stride 2 / padding 0", "[ops][grad]") {
  require_all_ok(
      gradcheck_op([](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], t[2], 1, 1); },
                   {input({2, 2, 5, 5}, 1), input({3, 2, 3, 3}, 2), input({3}, 3)}));
  require_all_ok(
      gradcheck_op([](const std::vector<Tensor>& t) { return conv2d(t[0], t[1], Tensor(), 0, 2); },
                   {input({1, 2, 7, 6}, 4), input({2, 2, 3, 3}, 5)}));
}

TEST_CASE("gradcheck: max_pool2d away from ties", "[ops][grad]") {
  // Values a permutation of 0.1 * k: neighbours differ by 0.1 >> step, so no window's
  // maximum changes under the perturbation (no kink is crossed).
  const Shape shape{2, 2, 4, 6};
  std::vector<float> v(static_cast<size_t>(numel(shape)));
  const std::vector<float> keys = random_values(v.size(), 6);
  std::vector<size_t> order(v.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return keys[a] < keys[b]; });
  for (size_t rank = 0; rank < order.size(); ++rank) v[order[rank]] = 0.1f * rank - 4.0f;
  require_all_ok(gradcheck_op([](const std::vector<Tensor>& t) { return max_pool2d(t[0], 2, 2); },
                              {{shape, v, true}}));
}

TEST_CASE("gradcheck: upsample_bilinear2d, both align_corners modes, scale and size",
          "[ops][grad]") {
  for (const bool align : {true, false}) {
    INFO("align_corners " << align);
    require_all_ok(gradcheck_op(
        [align](const std::vector<Tensor>& t) { return upsample_bilinear2d_scale(t[0], 2, align); },
        {input({1, 2, 3, 4}, 7)}));
    require_all_ok(gradcheck_op(
        [align](const std::vector<Tensor>& t) { return upsample_bilinear2d(t[0], 5, 7, align); },
        {input({2, 1, 3, 3}, 8)}));
  }
}

// A world of one process, in memory: what synchronised BatchNorm sees without mpirun.
class OneProcess : public SingleProcessGroup {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  void allgather(const double* mine, int64_t count, double* all) override {
    std::copy(mine, mine + count, all);
    ++calls;
  }
  int calls = 0;
};

TEST_CASE("gradcheck: sync_batch_norm2d over one process is batch_norm2d", "[ops][grad]") {
  const Shape x_shape{3, 2, 3, 3};
  OneProcess group;
  require_all_ok(gradcheck_op(
      [&](const std::vector<Tensor>& t) {
        return sync_batch_norm2d(t[0], t[1], t[2], Tensor::zeros({2}), Tensor::ones({2}), group);
      },
      {input(x_shape, 9, 1.0f, 4.0f), input({2}, 10, 0.5f, 1.5f), input({2}, 11)}));
  // The same output, gradients and running statistics as the per-process op.
  const std::vector<float> xs = random_values(size_t(numel(x_shape)), 21, 1.0f, 4.0f);
  const std::vector<float> rs = random_values(size_t(numel(x_shape)), 22, -1.0f, 1.0f);
  Tensor outputs[2], grads[2], means[2], vars[2];
  group.calls = 0;
  for (int sync = 0; sync < 2; ++sync) {
    Tensor x = Tensor::from_host(xs, x_shape).set_requires_grad(true);
    const Tensor gamma = Tensor::from_host(std::vector<float>{0.7f, 1.3f}, {2});
    const Tensor beta = Tensor::from_host(std::vector<float>{0.1f, -0.2f}, {2});
    means[sync] = Tensor::from_host(std::vector<float>{0.5f, -1.0f}, {2});
    vars[sync] = Tensor::from_host(std::vector<float>{2.0f, 0.5f}, {2});
    outputs[sync] = sync ? sync_batch_norm2d(x, gamma, beta, means[sync], vars[sync], group, 0.3f)
                         : batch_norm2d(x, gamma, beta, means[sync], vars[sync], true, 0.3f);
    sum(mul(outputs[sync], Tensor::from_host(rs, x_shape))).backward();
    grads[sync] = x.grad();
  }
  CHECK(group.calls == 2);  // one exchange in the forward, one in the backward
  for (const auto& pair :
       {std::make_pair(outputs[0], outputs[1]), std::make_pair(grads[0], grads[1]),
        std::make_pair(means[0], means[1]), std::make_pair(vars[0], vars[1])}) {
    const std::vector<float> a = pair.first.to_host(), b = pair.second.to_host();
    REQUIRE(a.size() == b.size());
    for (size_t i = 0; i < a.size(); ++i) CHECK(b[i] == Approx(a[i]).margin(1e-5).epsilon(1e-5));
  }
}

TEST_CASE("gradcheck: batch_norm2d in train and eval mode", "[ops][grad]") {
  const Shape x_shape{3, 2, 3, 3};
  require_all_ok(gradcheck_op(
      [](const std::vector<Tensor>& t) {
        // fresh running buffers per call: train mode updates them
        return batch_norm2d(t[0], t[1], t[2], Tensor::zeros({2}), Tensor::ones({2}), true);
      },
      {input(x_shape, 9, -2.0f, 2.0f), input({2}, 10, 0.5f, 1.5f), input({2}, 11)}));
  require_all_ok(gradcheck_op(
      [](const std::vector<Tensor>& t) {
        return batch_norm2d(t[0], t[1], t[2], t[3], t[4], false);
      },
      {input(x_shape, 12), input({2}, 13, 0.5f, 1.5f), input({2}, 14), constant({2}, {0.3f, -0.2f}),
       constant({2}, {0.5f, 2.0f})}));
}

TEST_CASE("gradcheck: relu (kinks at 0 skipped) and sigmoid", "[ops][grad]") {
  const OpInput x = input({2, 3, 2, 2}, 15, -2.0f, 2.0f);
  GradCheckResult r =
      gradcheck_op([](const std::vector<Tensor>& t) { return relu(t[0]); }, {x}, 99, {}, 1.0f,
                   [&](size_t, size_t i) { return std::fabs(x.values[i]) < 0.05f; })[0];
  CHECK(r.ok());
  CHECK(r.checked >= 20);
  require_all_ok(gradcheck_op([](const std::vector<Tensor>& t) { return sigmoid(t[0]); },
                              {input({2, 3, 2, 2}, 16, -3.0f, 3.0f)}));
}

TEST_CASE("relu of a temporary works in place, same values and gradient", "[ops][grad]") {
  const OpInput in = input({2, 3, 4, 5}, 18, -2.0f, 2.0f);
  const auto run = [&](bool temporary) {
    Tensor x = Tensor::from_host(in.values, in.shape).set_requires_grad(true);
    Tensor y = temporary ? relu(scale(x, 1.5f)) : [&] {
      const Tensor t = scale(x, 1.5f);
      return relu(t);
    }();
    sum(mul(y, y)).backward();
    return std::make_pair(y.to_host<float>(), x.grad().to_host<float>());
  };
  const auto [y_in_place, dx_in_place] = run(true);
  const auto [y_copy, dx_copy] = run(false);
  CHECK(y_in_place == y_copy);
  CHECK(dx_in_place == dx_copy);

  // In place only when nothing else holds the input.
  Tensor t = Tensor::from_host(in.values, in.shape);
  const void* memory = t.raw_data();
  const Tensor y = relu(std::move(t));
  CHECK(y.raw_data() == memory);
  Tensor u = Tensor::from_host(in.values, in.shape);
  const Tensor kept = u;
  const Tensor z = relu(std::move(u));
  CHECK(z.raw_data() != kept.raw_data());
  CHECK(kept.to_host<float>() == in.values);
  const Tensor w = Tensor::from_host(in.values, in.shape);
  const Tensor v = relu(w);  // an lvalue is never written
  CHECK(w.to_host<float>() == in.values);
  CHECK(v.to_host<float>() == z.to_host<float>());
}

TEST_CASE("dropout2d of a temporary works in place, same values and gradient", "[ops][grad]") {
  const OpInput in = input({2, 6, 3, 4}, 19, -2.0f, 2.0f);
  const auto run = [&](bool temporary) {
    Generator gen(5, 0);
    Tensor x = Tensor::from_host(in.values, in.shape).set_requires_grad(true);
    Tensor y = temporary ? dropout2d(scale(x, 1.5f), 0.5f, true, gen) : [&] {
      const Tensor t = scale(x, 1.5f);
      return dropout2d(t, 0.5f, true, gen);
    }();
    sum(mul(y, y)).backward();
    return std::make_pair(y.to_host<float>(), x.grad().to_host<float>());
  };
  const auto [y_in_place, dx_in_place] = run(true);
  const auto [y_copy, dx_copy] = run(false);
  CHECK(y_in_place == y_copy);
  CHECK(dx_in_place == dx_copy);

  Generator gen(5, 0);
  Tensor t = Tensor::from_host(in.values, in.shape);
  const void* memory = t.raw_data();
  const Tensor y = dropout2d(std::move(t), 0.5f, true, gen);
  CHECK(y.raw_data() == memory);
  Tensor u = Tensor::from_host(in.values, in.shape);
  const Tensor kept = u;
  const Tensor z = dropout2d(std::move(u), 0.5f, true, gen);
  CHECK(z.raw_data() != kept.raw_data());
  CHECK(kept.to_host<float>() == in.values);
}

TEST_CASE("gradcheck: dropout2d with a replayed generator", "[ops][grad]") {
  const auto f = [](const std::vector<Tensor>& t) {
    Generator gen(3, 17);  // the same mask on every evaluation
    return dropout2d(t[0], 0.5f, true, gen);
  };
  const OpInput x = input({2, 4, 2, 2}, 18);
  require_all_ok(gradcheck_op(f, {x}));
  // The mask is not trivial: some channels are dropped, the kept ones are scaled by 2.
  NoGradGuard no_grad;
  const std::vector<float> y = f({Tensor::from_host(x.values, x.shape)}).to_host();
  int dropped = 0, kept = 0;
  for (size_t ch = 0; ch < 8; ++ch) {
    const float ratio = y[ch * 4] / x.values[ch * 4];
    if (y[ch * 4] == 0.0f) ++dropped;
    if (std::fabs(ratio - 2.0f) < 1e-5f) ++kept;
  }
  CHECK(dropped > 0);
  CHECK(kept > 0);
  CHECK(dropped + kept == 8);
}

TEST_CASE("gradcheck: add, mul, scale, sum, mean, concat_channels, reshape", "[ops][grad]") {
  const Shape s{2, 3, 2, 2};
  require_all_ok(gradcheck_op([](const std::vector<Tensor>& t) { return add(t[0], t[1]); },
                              {input(s, 19), input(s, 20)}));
  require_all_ok(gradcheck_op([](const std::vector<Tensor>& t) { return mul(t[0], t[1]); },
                              {input(s, 21), input(s, 22)}));
  require_all_ok(gradcheck_op([](const std::vector<Tensor>& t) { return scale(t[0], -1.5f); },
                              {input(s, 23)}));
  require_all_ok(
      gradcheck_op([](const std::vector<Tensor>& t) { return sum(t[0]); }, {input(s, 24)}));
  // mean's gradient is 1/24 per element; scaling the upstream makes it O(1) so the check
  // is not swamped by the tolerance floor of 1.
  require_all_ok(gradcheck_op([](const std::vector<Tensor>& t) { return mean(t[0]); },
                              {input(s, 25)}, 99, {}, 24.0f));
  require_all_ok(
      gradcheck_op([](const std::vector<Tensor>& t) { return concat_channels(t[0], t[1]); },
                   {input({2, 1, 2, 3}, 26), input({2, 3, 2, 3}, 27)}));
  require_all_ok(gradcheck_op(
      [](const std::vector<Tensor>& t) {
        return mul(reshape(t[0], {4, 6}), t[1]);
      },
      {input(s, 28), input({4, 6}, 29)}));
}

TEST_CASE("gradcheck: soft dice, bce and dice+bce losses", "[ops][grad]") {
  const Shape s{2, 1, 4, 4};
  const std::vector<float> t = random_values(32, 30, 0.0f, 1.0f);
  std::vector<float> target(32);
  for (size_t i = 0; i < 32; ++i) target[i] = t[i] > 0.5f ? 1.0f : 0.0f;
  // Per-element gradients are O(1/n): the upstream is scaled by n.
  for (const int which : {0, 1, 2}) {
    INFO("loss " << which);
    require_all_ok(gradcheck_op(
        [which](const std::vector<Tensor>& in) {
          if (which == 0) return soft_dice_loss(in[0], in[1]);
          if (which == 1) return bce_loss(in[0], in[1]);
          return dice_bce_loss(in[0], in[1]);
        },
        {input(s, 31, 0.1f, 0.9f), constant(s, target)}, 99, step_and_threshold(1e-3, 1e-2),
        32.0f));
  }
}

TEST_CASE("gradcheck: composite conv-relu-bn-pool-upsample-concat-conv-sigmoid-dice",
          "[ops][grad]") {
  const std::vector<float> t = random_values(32, 40, 0.0f, 1.0f);
  std::vector<float> target(32);
  for (size_t i = 0; i < 32; ++i) target[i] = t[i] > 0.6f ? 1.0f : 0.0f;
  const auto chain = [](const std::vector<Tensor>& in) {
    // x (2, 1, 4, 4), w1 (3, 1, 3, 3), b1 (3), gamma (3), beta (3), w2 (1, 6, 3, 3), target
    const Tensor h = batch_norm2d(relu(conv2d(in[0], in[1], in[2])), in[3], in[4],
                                  Tensor::zeros({3}), Tensor::ones({3}), true);
    const Tensor up = upsample_bilinear2d(max_pool2d(h, 2, 2), 4, 4, true);
    const Tensor out = sigmoid(conv2d(concat_channels(up, h), in[5], Tensor()));
    return soft_dice_loss(out, in[6]);
  };
  const std::vector<OpInput> inputs{
      input({2, 1, 4, 4}, 41),       input({3, 1, 3, 3}, 42), input({3}, 43, 0.2f, 0.6f),
      input({3}, 44, 0.5f, 1.5f),    input({3}, 45),          input({1, 6, 3, 3}, 46),
      constant({2, 1, 4, 4}, target)};
  // A perturbation of x or w1 could move a pre-activation across ReLU's kink; the small
  // step makes that unlikely and the data are fixed, so the outcome is deterministic. The
  // upstream is scaled by n so the per-element gradients of the Dice loss are O(1).
  const std::vector<GradCheckResult> results =
      gradcheck_op(chain, inputs, 99, step_and_threshold(1e-3, 2e-2), 32.0f);
  REQUIRE(results.size() == 6);
  require_all_ok(results);
}

TEST_CASE("gradcheck: a deliberately wrong backward rule is caught", "[ops][grad]") {
  // y = x * x with the rule dy * x (the factor 2 forgotten).
  const auto wrong_square = [](const std::vector<Tensor>& in) {
    Tensor y = Tensor::empty(in[0].shape());
    in[0].backend().mul(in[0].data<float>(), in[0].data<float>(), y.data<float>(), y.numel());
    record(y, "wrong_square", {in[0]},
           [x = in[0].detach()](const Tensor& dy, const std::vector<bool>&) -> std::vector<Tensor> {
             Tensor dx = Tensor::empty(x.shape());
             dy.backend().mul(dy.data<float>(), x.data<float>(), dx.data<float>(), dx.numel());
             return {dx};
           });
    return y;
  };
  const GradCheckResult r = gradcheck_op(wrong_square, {input({8}, 50, 1.0f, 3.0f)})[0];
  CHECK_FALSE(r.ok());
  CHECK(r.failed == 8);
  CHECK(r.worst_error > 0.3);
}
