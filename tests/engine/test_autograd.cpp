// The tape: fan-out accumulation, accumulation across backward calls, no-grad, release.
#include <catch2/catch.hpp>

#include "engine/autograd.h"
#include "engine/ops.h"

using namespace ich;

namespace {

Tensor leaf(std::vector<float> v) {
  const int64_t n = static_cast<int64_t>(v.size());
  return Tensor::from_host(v, {n}).set_requires_grad(true);
}

}  // namespace

TEST_CASE("autograd: d/dx sum(x * w) = w, d/dw = x", "[autograd]") {
  Tensor x = leaf({1, 2, 3});
  Tensor w = leaf({4, 5, 6});
  const Tensor loss = sum(mul(x, w));
  CHECK(loss.item() == 32.0f);
  loss.backward();
  CHECK(x.grad().to_host() == std::vector<float>{4, 5, 6});
  CHECK(w.grad().to_host() == std::vector<float>{1, 2, 3});
}

TEST_CASE("autograd: fan-out sums the gradients of every use", "[autograd]") {
  // y = x*x + 3x + x: dy/dx = 2x + 4; x feeds four uses (two through the same mul).
  Tensor x = leaf({1, -2, 0.5f});
  const Tensor y = sum(add(add(mul(x, x), scale(x, 3.0f)), x));
  y.backward();
  CHECK(x.grad().to_host() == std::vector<float>{6, 0, 5});
  // The skip pattern of the U-Net: one activation used by a deep path and by a concat.
  Tensor a =
      Tensor::from_host(std::vector<float>{1, 2, 3, 4}, {1, 1, 2, 2}).set_requires_grad(true);
  const Tensor h = relu(a);
  const Tensor deep = scale(h, 2.0f);
  const Tensor cat = concat_channels(deep, h);  // (1, 2, 2, 2)
  sum(cat).backward();
  CHECK(a.grad().to_host() == std::vector<float>{3, 3, 3, 3});
}

TEST_CASE("autograd: gradients accumulate over two backward calls until zero_grad", "[autograd]") {
  Tensor x = leaf({1, 2});
  sum(scale(x, 2.0f)).backward();
  sum(scale(x, 3.0f)).backward();
  CHECK(x.grad().to_host() == std::vector<float>{5, 5});
  x.zero_grad();
  CHECK_FALSE(x.grad().defined());
  sum(x).backward();
  CHECK(x.grad().to_host() == std::vector<float>{1, 1});
}

TEST_CASE("autograd: the first gradient stored in a leaf is private to it", "[autograd]") {
  // add passes its upstream gradient through; the leaf must not alias it.
  Tensor x = leaf({1, 2});
  const Tensor y = add(x, Tensor::zeros({2}));
  const Tensor upstream = Tensor::from_host(std::vector<float>{1, 1}, {2});
  y.backward(upstream);
  sum(scale(x, 1.0f)).backward();
  CHECK(upstream.to_host() == std::vector<float>{1, 1});
  CHECK(x.grad().to_host() == std::vector<float>{2, 2});
}

TEST_CASE("autograd: NoGradGuard records nothing", "[autograd]") {
  Tensor x = leaf({1, 2});
  {
    NoGradGuard guard;
    CHECK_FALSE(grad_mode_enabled());
    const Tensor y = scale(x, 2.0f);
    CHECK_FALSE(y.requires_grad());
    CHECK(y.is_leaf());
    CHECK_THROWS_WITH(sum(y).backward(), Catch::Contains("does not require grad"));
  }
  CHECK(grad_mode_enabled());
  CHECK(scale(x, 2.0f).requires_grad());
  const Tensor d = scale(x, 2.0f).detach();
  CHECK_FALSE(d.requires_grad());
}

TEST_CASE("autograd: a graph is released after backward and a second pass is refused",
          "[autograd]") {
  Tensor x = leaf({1, 2});
  const Tensor loss = sum(mul(x, x));
  loss.backward();
  CHECK(loss.grad_fn()->released());
  CHECK(loss.grad_fn()->inputs().empty());
  CHECK_THROWS_WITH(loss.backward(), Catch::Contains("second time"));
}

TEST_CASE("autograd: backward checks its upstream gradient", "[autograd]") {
  Tensor x = leaf({1, 2, 3});
  const Tensor y = scale(x, 2.0f);
  CHECK_THROWS_WITH(y.backward(), Catch::Contains("one-element"));
  CHECK_THROWS_WITH(y.backward(Tensor::ones({2})), Catch::Contains("shapes differ"));
  y.backward(Tensor::from_host(std::vector<float>{1, 0, -1}, {3}));
  CHECK(x.grad().to_host() == std::vector<float>{2, 0, -2});
}

TEST_CASE("autograd: a rule returning a wrongly shaped gradient is caught", "[autograd]") {
  Tensor x = leaf({1, 2, 3});
  Tensor y = x.clone();
  record(y, "broken", {x}, [](const Tensor&, const std::vector<bool>&) -> std::vector<Tensor> {
    return {Tensor::ones({2})};
  });
  CHECK_THROWS_WITH(sum(y).backward(), Catch::Contains("broken") && Catch::Contains("(2)"));
}
