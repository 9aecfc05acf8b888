// Adam through the optimiser against the hand formula; its state round trip; lr schedules.
#include <catch2/catch.hpp>
#include <cmath>

#include "engine/optim.h"

using namespace ich;

namespace {

// torch.optim.Adam (or AdamW) in double, one parameter vector over a sequence of grads.
std::vector<double> adam_by_hand(const std::vector<float>& start,
                                 const std::vector<std::vector<float>>& grads,
                                 const AdamOptions& o) {
  std::vector<double> result;
  for (size_t i = 0; i < start.size(); ++i) {
    double p = start[i], m = 0.0, v = 0.0;
    for (size_t t = 1; t <= grads.size(); ++t) {
      double g = grads[t - 1][i];
      if (o.decoupled_weight_decay) {
        p *= 1.0 - double(o.lr) * o.weight_decay;
      } else {
        g += double(o.weight_decay) * p;
      }
      m = o.beta1 * m + (1.0 - o.beta1) * g;
      v = o.beta2 * v + (1.0 - o.beta2) * g * g;
      const double m_hat = m / (1.0 - std::pow(double(o.beta1), double(t)));
      const double v_hat = v / (1.0 - std::pow(double(o.beta2), double(t)));
      p -= o.lr * m_hat / (std::sqrt(v_hat) + o.eps);
    }
    result.push_back(p);
  }
  return result;
}

}  // namespace

TEST_CASE("Adam matches the hand formula, with L2 and decoupled weight decay", "[optim]") {
  const std::vector<float> start{0.5f, -1.0f, 2.0f, 0.0f};
  const std::vector<std::vector<float>> grads{
      {0.1f, -0.2f, 0.3f, 1.0f}, {-0.4f, 0.5f, 0.0f, 1.0f}, {0.2f, 0.2f, -0.1f, -3.0f}};
  for (const bool decoupled : {false, true}) {
    INFO("decoupled " << decoupled);
    AdamOptions o;
    o.lr = 0.05f;
    o.weight_decay = 0.1f;
    o.decoupled_weight_decay = decoupled;
    Tensor p = Tensor::from_host(start, {4}).set_requires_grad(true);
    Adam adam({{"p", p}}, o);
    for (const auto& g : grads) {
      p.set_grad(Tensor::from_host(g, {4}));
      adam.step();
    }
    const std::vector<double> expected = adam_by_hand(start, grads, o);
    const std::vector<float> got = p.to_host();
    for (size_t i = 0; i < 4; ++i) CHECK(got[i] == Approx(expected[i]).epsilon(1e-5).margin(1e-6));
    // the first step of Adam moves every coordinate by about lr (sign of the gradient)
    CHECK(std::fabs(got[3] - start[3]) > 0.05f);
  }
}

TEST_CASE("Adam skips parameters without a grad and its state round-trips", "[optim]") {
  Tensor a = Tensor::from_host(std::vector<float>{1, 2}, {2}).set_requires_grad(true);
  Tensor b = Tensor::from_host(std::vector<float>{3}, {1}).set_requires_grad(true);
  Adam adam({{"a", a}, {"b", b}});
  a.set_grad(Tensor::from_host(std::vector<float>{1, 1}, {2}));
  adam.step();
  CHECK(b.to_host() == std::vector<float>{3});  // no grad: untouched
  const NamedTensors state = adam.state();
  REQUIRE(state.size() == 3);  // a only
  CHECK(state[0].first == "a.exp_avg");
  CHECK(state[2].first == "a.step");
  CHECK(state[2].second.to_host<int64_t>()[0] == 1);

  // A second optimiser restored from the state continues exactly like the first.
  Tensor a2 = a.clone().set_requires_grad(true);
  Tensor b2 = b.clone().set_requires_grad(true);
  Adam restored({{"a", a2}, {"b", b2}});
  std::map<std::string, Tensor> saved;
  for (const auto& [name, t] : state) saved.emplace(name, t.clone());
  restored.load_state(saved);
  const Tensor g = Tensor::from_host(std::vector<float>{-0.5f, 2.0f}, {2});
  a.set_grad(g);
  a2.set_grad(g);
  adam.step();
  restored.step();
  CHECK(a.to_host() == a2.to_host());

  saved.emplace("c.step", Tensor::from_host(std::vector<int64_t>{1}, {1}));
  CHECK_THROWS_WITH(restored.load_state(saved), Catch::Contains("'c.step'"));
  CHECK_THROWS_WITH(Adam({{"a", a}, {"a", b}}), Catch::Contains("given twice"));
}

TEST_CASE("lr schedules: constant, cosine, poly", "[optim]") {
  LrSchedule s;
  s.base_lr = 0.1f;
  s.total_steps = 100;
  s.min_lr = 0.0f;
  CHECK(s.at(0) == 0.1f);
  CHECK(s.at(57) == 0.1f);
  s.kind = LrSchedule::parse_kind("cosine");
  CHECK(s.at(0) == Approx(0.1f));
  CHECK(s.at(50) == Approx(0.05f));
  CHECK(s.at(25) == Approx(0.05 * (1 + std::cos(M_PI / 4))));
  CHECK(s.at(100) == Approx(0.0f).margin(1e-9));
  CHECK(s.at(1000) == Approx(0.0f).margin(1e-9));  // clamped past the end
  s.kind = LrScheduleKind::poly;
  s.power = 0.9f;
  s.min_lr = 0.01f;
  CHECK(s.at(0) == Approx(0.1f));
  CHECK(s.at(50) == Approx(0.01 + 0.09 * std::pow(0.5, 0.9)));
  CHECK(s.at(100) == Approx(0.01f));
  CHECK_THROWS_WITH(LrSchedule::parse_kind("step"), Catch::Contains("constant, cosine or poly"));
}
