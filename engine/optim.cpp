#include "engine/optim.h"

#include <cmath>
#include <set>

namespace ich {

Adam::Adam(NamedTensors params, AdamOptions options) : options_(options) {
  ICH_CHECK(options.lr >= 0.0f && options.eps > 0.0f && options.weight_decay >= 0.0f,
            "Adam: lr " << options.lr << ", eps " << options.eps << ", weight_decay "
                        << options.weight_decay << " must be >= 0 (eps > 0)");
  ICH_CHECK(options.beta1 >= 0.0f && options.beta1 < 1.0f && options.beta2 >= 0.0f &&
                options.beta2 < 1.0f,
            "Adam: betas (" << options.beta1 << ", " << options.beta2 << ") must be in [0, 1)");
  std::set<std::string> seen;
  for (auto& [name, t] : params) {
    ICH_CHECK(seen.insert(name).second, "Adam: parameter '" << name << "' given twice");
    t.check_dtype(DType::f32, "Adam parameter");
    ICH_CHECK(t.requires_grad(), "Adam: parameter '" << name << "' does not require grad");
    slots_.push_back({name, t, Tensor(), Tensor(), 0});
  }
}

void Adam::set_lr(float lr) {
  ICH_CHECK(lr >= 0.0f && std::isfinite(lr), "Adam: learning rate " << lr << " must be >= 0");
  options_.lr = lr;
}

void Adam::step() {
  for (Slot& s : slots_) {
    const Tensor& grad = s.param.grad();
    if (!grad.defined()) continue;
    check_same_device("Adam step (parameter, grad)", s.param, grad);
    if (!s.exp_avg.defined()) {
      s.exp_avg = Tensor::zeros(s.param.shape(), s.param.device());
      s.exp_avg_sq = Tensor::zeros(s.param.shape(), s.param.device());
    }
    ICH_CHECK(s.exp_avg.device() == s.param.device(),
              "Adam: the state of '" << s.name << "' is on " << s.exp_avg.device().str()
                                     << " but the parameter is on " << s.param.device().str()
                                     << "; create the optimiser after moving the model");
    ++s.step;
    AdamParams p;
    p.lr = options_.lr;
    p.beta1 = options_.beta1;
    p.beta2 = options_.beta2;
    p.eps = options_.eps;
    p.weight_decay = options_.weight_decay;
    p.decoupled_weight_decay = options_.decoupled_weight_decay;
    p.step = s.step;
    s.param.backend().adam_step(s.param.data<float>(), grad.data<float>(), s.exp_avg.data<float>(),
                                s.exp_avg_sq.data<float>(), s.param.numel(), p);
  }
}

void Adam::zero_grad() {
  for (Slot& s : slots_) s.param.zero_grad();
}

NamedTensors Adam::state() const {
  NamedTensors out;
  for (const Slot& s : slots_) {
    if (s.step == 0) continue;
    out.emplace_back(s.name + ".exp_avg", s.exp_avg);
    out.emplace_back(s.name + ".exp_avg_sq", s.exp_avg_sq);
    out.emplace_back(s.name + ".step", Tensor::from_host(std::vector<int64_t>{s.step}, {1}));
  }
  return out;
}

void Adam::load_state(const std::map<std::string, Tensor>& state) {
  std::set<std::string> used;
  std::vector<Slot> loaded = slots_;
  for (Slot& s : loaded) {
    const auto step_it = state.find(s.name + ".step");
    if (step_it == state.end()) {
      s.step = 0;
      s.exp_avg = s.exp_avg_sq = Tensor();
      continue;
    }
    const auto m_it = state.find(s.name + ".exp_avg");
    const auto v_it = state.find(s.name + ".exp_avg_sq");
    ICH_CHECK(m_it != state.end() && v_it != state.end(),
              "Adam state: '" << s.name << "' has a step but no exp_avg / exp_avg_sq");
    ICH_CHECK(step_it->second.dtype() == DType::i64 && step_it->second.numel() == 1,
              "Adam state: '" << s.name << ".step' must be one int64, got "
                              << step_it->second.describe());
    for (const auto* it : {&m_it, &v_it}) {
      ICH_CHECK((*it)->second.shape() == s.param.shape() && (*it)->second.dtype() == DType::f32,
                "Adam state: '" << (*it)->first << "' is " << (*it)->second.describe()
                                << " but the parameter is " << s.param.describe());
    }
    s.step = step_it->second.to_host<int64_t>()[0];
    ICH_CHECK(s.step >= 1, "Adam state: '" << s.name << ".step' is " << s.step);
    s.exp_avg = m_it->second.to(s.param.device()).clone();
    s.exp_avg_sq = v_it->second.to(s.param.device()).clone();
    used.insert(step_it->first);
    used.insert(m_it->first);
    used.insert(v_it->first);
  }
  for (const auto& [name, t] : state) {
    ICH_CHECK(used.count(name),
              "Adam state: '" << name << "' belongs to no parameter of this optimiser");
  }
  slots_ = std::move(loaded);
}

float LrSchedule::at(int64_t step) const {
  ICH_CHECK(total_steps >= 1, "lr schedule: total_steps " << total_steps << " must be >= 1");
  const double t = static_cast<double>(std::min(std::max<int64_t>(step, 0), total_steps)) /
                   static_cast<double>(total_steps);
  switch (kind) {
    case LrScheduleKind::constant:
      return base_lr;
    case LrScheduleKind::cosine:
      return static_cast<float>(min_lr + (base_lr - min_lr) * 0.5 * (1.0 + std::cos(M_PI * t)));
    case LrScheduleKind::poly:
      return static_cast<float>(min_lr + (base_lr - min_lr) * std::pow(1.0 - t, double(power)));
  }
  return base_lr;
}

LrScheduleKind LrSchedule::parse_kind(const std::string& name) {
  if (name == "constant") return LrScheduleKind::constant;
  if (name == "cosine") return LrScheduleKind::cosine;
  if (name == "poly") return LrScheduleKind::poly;
  ICH_FAIL("unknown lr schedule '" << name << "': use constant, cosine or poly");
}

const char* LrSchedule::kind_name(LrScheduleKind kind) {
  switch (kind) {
    case LrScheduleKind::constant:
      return "constant";
    case LrScheduleKind::cosine:
      return "cosine";
    case LrScheduleKind::poly:
      return "poly";
  }
  return "unknown";
}

}  // namespace ich
