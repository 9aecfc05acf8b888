// Tensor basics: factories, shapes, dtypes, devices, host round trips, errors.
#include <catch2/catch.hpp>
#include <cmath>

#include "core/philox.h"
#include "engine/ops.h"
#include "engine/tensor.h"

using namespace ich;

TEST_CASE("tensor factories hold the values they were given", "[tensor]") {
  const Tensor z = Tensor::zeros({2, 3});
  CHECK(z.numel() == 6);
  CHECK(z.ndim() == 2);
  CHECK(z.dim(-1) == 3);
  CHECK(z.to_host() == std::vector<float>(6, 0.0f));
  CHECK(Tensor::full({4}, 2.5f).to_host() == std::vector<float>(4, 2.5f));

  const std::vector<float> v{1, 2, 3, 4, 5, 6};
  const Tensor t = Tensor::from_host(v, {1, 2, 3});
  CHECK(t.to_host() == v);
  CHECK(t.shape_str() == "(1, 2, 3)");
  CHECK(t.describe() == "f32 (1, 2, 3) on cpu");

  const std::vector<int16_t> hu{-1000, 40, 3071};
  const Tensor ti = Tensor::from_host(hu, {3});
  CHECK(ti.dtype() == DType::i16);
  CHECK(ti.to_host<int16_t>() == hu);
  CHECK(Tensor::zeros({3}, Device::cpu(), DType::u8).to_host<uint8_t>() ==
        std::vector<uint8_t>(3, 0));
  CHECK(Tensor::from_host(std::vector<float>{7.5f}, {1}).item() == 7.5f);
}

TEST_CASE("tensor random draws follow the Philox contract and advance the generator", "[tensor]") {
  Generator gen(42);
  const Tensor a = Tensor::uniform({100}, -2.0f, 2.0f, gen);
  CHECK(gen.offset == 100);
  const Tensor b = Tensor::uniform({100}, -2.0f, 2.0f, gen);
  CHECK(gen.offset == 200);
  const std::vector<float> av = a.to_host(), bv = b.to_host();
  CHECK(av != bv);
  for (int i = 0; i < 100; ++i) {
    CHECK(av[i] >= -2.0f);
    CHECK(av[i] < 2.0f);
    // element i of the second draw is Philox index 100 + i
    CHECK(bv[i] == Approx(-2.0f + 4.0f * philox_uniform(42, 100 + i)).margin(1e-6));
  }
  Generator again(42);
  CHECK(Tensor::uniform({100}, -2.0f, 2.0f, again).to_host() == av);
  Generator normal_gen(7);
  const std::vector<float> nv = Tensor::normal({4000}, 1.0f, 2.0f, normal_gen).to_host();
  double mean = 0.0;
  for (float x : nv) mean += x;
  mean /= nv.size();
  CHECK(mean == Approx(1.0).margin(0.15));
}

TEST_CASE("tensor shape errors are ich::Error with the shape in the message", "[tensor]") {
  CHECK_THROWS_AS(Tensor::empty({}), Error);
  CHECK_THROWS_WITH(Tensor::zeros({2, 0, 3}), Catch::Contains("(2, 0, 3)"));
  CHECK_THROWS_WITH(Tensor::zeros({-1}), Catch::Contains("dimension <= 0"));
  CHECK_THROWS_WITH(Tensor::from_host(std::vector<float>{1, 2, 3}, {2, 2}),
                    Catch::Contains("3 values do not fill shape (2, 2)"));
  CHECK_THROWS_WITH(Tensor::zeros({2}).item(), Catch::Contains("one-element"));
  CHECK_THROWS_WITH(Tensor::zeros({2}).to_host<int32_t>(), Catch::Contains("expected a i32"));
  CHECK_THROWS_WITH(Tensor().shape(), Catch::Contains("undefined tensor"));
  CHECK_THROWS_WITH(Tensor::zeros({2}).dim(3), Catch::Contains("out of range"));
  CHECK_THROWS_AS(Tensor::zeros({2}, Device::cpu(), DType::i32).set_requires_grad(true), Error);
}

TEST_CASE("clone copies, detach shares, copy_ overwrites", "[tensor]") {
  Tensor a = Tensor::from_host(std::vector<float>{1, 2, 3}, {3});
  Tensor c = a.clone();
  Tensor d = a.detach();
  a.copy_(Tensor::from_host(std::vector<float>{4, 5, 6}, {3}));
  CHECK(c.to_host() == std::vector<float>{1, 2, 3});
  CHECK(d.to_host() == std::vector<float>{4, 5, 6});
  CHECK_THROWS_WITH(a.copy_(Tensor::zeros({4})), Catch::Contains("cannot copy"));
  CHECK(a.to(Device::cpu()).same(a));  // already there: the same tensor
}

TEST_CASE("devices: a device missing from the build is an error naming it", "[tensor]") {
  if (backend_available(Device::cuda())) {
    WARN("a GPU is present; the missing-device path is not reachable here");
    CHECK(Tensor::zeros({2}, Device::cuda()).to(Device::cpu()).to_host() ==
          std::vector<float>(2, 0.0f));
    return;
  }
  CHECK_THROWS_WITH(Tensor::zeros({2}, Device::cuda()), Catch::Contains("cuda:0"));
}

TEST_CASE("devices: moving is explicit and mixing devices is refused", "[tensor]") {
  if (!backend_available(Device::cuda_emu())) {
    WARN("cuda-emu is not in this build; the two-device checks need a second device");
    return;
  }
  const Tensor a = Tensor::from_host(std::vector<float>{1, 2, 3, 4}, {4});
  const Tensor b = a.to(Device::cuda_emu());
  CHECK(b.device() == Device::cuda_emu());
  CHECK(b.to_host() == a.to_host());
  CHECK(b.to(Device::cpu()).to_host() == a.to_host());
  Tensor c = Tensor::zeros({4}, Device::cuda_emu());
  c.copy_(a);  // explicit copy across devices
  CHECK(c.to_host() == a.to_host());
  CHECK_THROWS_WITH(add(a, b), Catch::Contains("add") && Catch::Contains("on cpu") &&
                                   Catch::Contains("on cuda-emu"));
}
