// Finite-difference gradient checks through autograd: every op of the op table (tests/ops:
// each entry's gradient checks, one test per family, e.g. "gradcheck: activation: relu,
// sigmoid"), the ops built from other ops (sync_batch_norm2d, mean, reshape, dice + BCE),
// the in-place variants, a composite chain shaped like a U-Net level, and proof that a
// wrong rule is caught.
#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <functional>
#include <utility>

#include "common/gradcheck_op.h"
#include "common/table_tests.h"

using namespace ich;
using ich::test::constant;
using ich::test::gradcheck_op;
using ich::test::GradCheckOptions;
using ich::test::GradCheckResult;
using ich::test::input;
using ich::test::OpInput;
using ich::test::random_values;
using ich::test::step_and_threshold;

namespace {

void require_all_ok(const std::vector<GradCheckResult>& results) {
  REQUIRE_FALSE(results.empty());
  for (size_t k = 0; k < results.size(); ++k) {
    INFO("differentiable input " << k << ": " << results[k].first_failure << " (checked "
                                 << results[k].checked << ", worst " << results[k].worst_error
                                 << ")");
    CHECK(results[k].ok());
  }
}

// One gradient check of the op table: every differentiable input passes, and meets the
// check's further conditions.
void check_op_grad(const ich::test::ops::OpGrad& g) {
  const std::vector<GradCheckResult> results =
      gradcheck_op(g.op, g.inputs, g.seed, g.options, g.upstream_scale, g.is_kink, g.upstream);
  require_all_ok(results);
  for (size_t k = 0; k < results.size(); ++k)
    for (const auto& [what, holds] : g.conditions) {
      INFO("differentiable input " << k << ": " << what << " (checked " << results[k].checked
                                   << ", skipped " << results[k].skipped << ", worst "
                                   << results[k].worst_error << ")");
      CHECK(holds(results[k]));
    }
}

const bool registered = ich::test::register_family_tests(
    "gradcheck", "[ops][grad]", [](const ich::test::ops::OpEntry& e) { return !e.grad.empty(); },
    [](const std::vector<const ich::test::ops::OpEntry*>& entries) {
      for (const ich::test::ops::OpEntry* e : entries)
        for (const ich::test::ops::OpGrad& g : e->grad) {
          SECTION(g.name) {
            check_op_grad(g);
          }
        }
    });

}  // namespace

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
  const std::vector<float> xs = random_values(size_t(shape_numel(x_shape)), 21, 1.0f, 4.0f);
  const std::vector<float> rs = random_values(size_t(shape_numel(x_shape)), 22, -1.0f, 1.0f);
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

namespace {

// An op's in-place overload on a temporary against the op on a named tensor: the same values
// and gradient; in place only when nothing else holds the input, and a named input is never
// written.
void check_in_place(const OpInput& in, const std::function<Tensor(Tensor&&)>& on_temporary,
                    const std::function<Tensor(const Tensor&)>& on_named) {
  const auto run = [&](bool temporary) {
    Tensor x = Tensor::from_host(in.values, in.shape).set_requires_grad(true);
    Tensor y = temporary ? on_temporary(scale(x, 1.5f)) : [&] {
      const Tensor t = scale(x, 1.5f);
      return on_named(t);
    }();
    sum(mul(y, y)).backward();
    return std::make_pair(y.to_host<float>(), x.grad().to_host<float>());
  };
  const auto [y_in_place, dx_in_place] = run(true);
  const auto [y_copy, dx_copy] = run(false);
  CHECK(y_in_place == y_copy);
  CHECK(dx_in_place == dx_copy);

  Tensor t = Tensor::from_host(in.values, in.shape);
  const void* memory = t.raw_data();
  const Tensor y = on_temporary(std::move(t));
  CHECK(y.raw_data() == memory);
  Tensor u = Tensor::from_host(in.values, in.shape);
  const Tensor kept = u;
  const Tensor z = on_temporary(std::move(u));
  CHECK(z.raw_data() != kept.raw_data());
  CHECK(kept.to_host<float>() == in.values);
  const Tensor w = Tensor::from_host(in.values, in.shape);
  const Tensor v = on_named(w);
  CHECK(w.to_host<float>() == in.values);
  CHECK(v.to_host<float>() == z.to_host<float>());
}

}  // namespace

TEST_CASE("relu of a temporary works in place, same values and gradient", "[ops][grad]") {
  check_in_place(
      input({2, 3, 4, 5}, 18, -2.0f, 2.0f), [](Tensor&& t) { return relu(std::move(t)); },
      [](const Tensor& t) { return relu(t); });
}

TEST_CASE("dropout2d of a temporary works in place, same values and gradient", "[ops][grad]") {
  // A generator replayed from (5, 0) for every call: the same mask each time.
  check_in_place(
      input({2, 6, 3, 4}, 19, -2.0f, 2.0f),
      [](Tensor&& t) {
        Generator gen(5, 0);
        return dropout2d(std::move(t), 0.5f, true, gen);
      },
      [](const Tensor& t) {
        Generator gen(5, 0);
        return dropout2d(t, 0.5f, true, gen);
      });
}

// The replayed generator of the table's dropout2d check gives a mask that is not trivial:
// some channels are dropped, the kept ones are scaled by 2.
TEST_CASE("dropout2d: a replayed generator drops some channels and scales the rest",
          "[ops][grad]") {
  const OpInput x = input({2, 4, 2, 2}, 18);
  Generator gen(3, 17);
  NoGradGuard no_grad;
  const std::vector<float> y =
      dropout2d(Tensor::from_host(x.values, x.shape), 0.5f, true, gen).to_host();
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

TEST_CASE("gradcheck: mean, reshape", "[ops][grad]") {
  const Shape s{2, 3, 2, 2};
  // mean's gradient is 1/24 per element; scaling the upstream makes it O(1) so the check
  // is not swamped by the tolerance floor of 1.
  require_all_ok(gradcheck_op([](const std::vector<Tensor>& t) { return mean(t[0]); },
                              {input(s, 25)}, 99, {}, 24.0f));
  require_all_ok(gradcheck_op(
      [](const std::vector<Tensor>& t) {
        return mul(reshape(t[0], {4, 6}), t[1]);
      },
      {input(s, 28), input({4, 6}, 29)}));
}

TEST_CASE("gradcheck: dice+bce loss", "[ops][grad]") {
  const Shape s{2, 1, 4, 4};
  const std::vector<float> t = random_values(32, 30, 0.0f, 1.0f);
  std::vector<float> target(32);
  for (size_t i = 0; i < 32; ++i) target[i] = t[i] > 0.5f ? 1.0f : 0.0f;
  // Per-element gradients are O(1/n): the upstream is scaled by n.
  require_all_ok(gradcheck_op(
      [](const std::vector<Tensor>& in) { return dice_bce_loss(in[0], in[1]); },
      {input(s, 31, 0.1f, 0.9f), constant(s, target)}, 99, step_and_threshold(1e-3, 1e-2), 32.0f));
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
