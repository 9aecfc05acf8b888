// Losses: soft Dice (medicaltorch's global form, negative), BCE, Dice + BCE; and the
// finite-loss check of the trainer.
#include <cmath>

#include "engine/ops.h"
#include "engine/ops_common.h"

namespace ich {

namespace {

void check_loss_inputs(const char* op, const Tensor& p, const Tensor& target) {
  detail::check_input(op, "prediction", p);
  detail::check_input(op, "target", target);
  check_same_device(op, p, target);
  ICH_CHECK(p.shape() == target.shape(), op << ": prediction " << p.shape_str() << " and target "
                                            << target.shape_str() << " must have the same shape");
  ICH_CHECK(!target.requires_grad(),
            op << ": the target requires grad; losses treat it as data, detach() it first");
}

}  // namespace

Tensor soft_dice_loss(const Tensor& p, const Tensor& target, float smooth) {
  check_loss_inputs("soft_dice_loss", p, target);
  ICH_CHECK(smooth >= 0.0f, "soft_dice_loss: smooth " << smooth << " must be >= 0");
  Tensor stats = Tensor::empty({2}, p.device());
  Tensor loss = Tensor::empty({1}, p.device());
  p.backend().soft_dice_forward(p.data<float>(), target.data<float>(), p.numel(), smooth,
                                stats.data<float>(), loss.data<float>());
  record(loss, "soft_dice_loss", {p, target},
         [p = p.detach(), t = target.detach(), stats, smooth](
             const Tensor& dloss, const std::vector<bool>&) -> std::vector<Tensor> {
           Tensor dp = Tensor::empty(p.shape(), dloss.device());
           dloss.backend().soft_dice_backward(p.data<float>(), t.data<float>(), p.numel(), smooth,
                                              stats.data<float>(), dloss.data<float>(),
                                              dp.data<float>());
           return {dp, Tensor()};
         });
  return loss;
}

Tensor bce_loss(const Tensor& p, const Tensor& target) {
  check_loss_inputs("bce_loss", p, target);
  Tensor loss = Tensor::empty({1}, p.device());
  p.backend().bce_forward(p.data<float>(), target.data<float>(), p.numel(), loss.data<float>());
  record(loss, "bce_loss", {p, target},
         [p = p.detach(), t = target.detach()](const Tensor& dloss,
                                               const std::vector<bool>&) -> std::vector<Tensor> {
           Tensor dp = Tensor::empty(p.shape(), dloss.device());
           dloss.backend().bce_backward(p.data<float>(), t.data<float>(), p.numel(),
                                        dloss.data<float>(), dp.data<float>());
           return {dp, Tensor()};
         });
  return loss;
}

Tensor dice_bce_loss(const Tensor& p, const Tensor& target, float dice_weight, float bce_weight) {
  return add(scale(soft_dice_loss(p, target), dice_weight), scale(bce_loss(p, target), bce_weight));
}

void check_finite(const Tensor& t, const std::string& context) {
  ICH_CHECK(t.defined(), "check_finite (" << context << "): undefined tensor");
  const std::vector<float> values = t.to_host<float>();
  for (size_t i = 0; i < values.size(); ++i) {
    if (std::isfinite(values[i])) continue;
    if (values.size() == 1) {
      ICH_FAIL("loss is " << values[i] << " at " << context
                          << "; lower the learning rate, check the inputs for NaN/Inf, or "
                             "resume from the last good checkpoint");
    }
    ICH_FAIL("element " << i << " of " << t.describe() << " is " << values[i] << " at " << context);
  }
}

}  // namespace ich
