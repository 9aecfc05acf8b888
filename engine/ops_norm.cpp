// batch_norm2d: train mode (batch statistics, running buffers updated) and eval mode
// (running statistics), each with its backward.
#include "engine/ops.h"
#include "engine/ops_common.h"

namespace ich {

namespace {

void check_channel_vector(const char* name, const Tensor& v, const Tensor& x) {
  detail::check_input("batch_norm2d", name, v, 1);
  check_same_device("batch_norm2d", x, v);
  ICH_CHECK(v.dim(0) == x.dim(1), "batch_norm2d: " << name << " " << v.shape_str()
                                                   << " does not match the " << x.dim(1)
                                                   << " channels of the input " << x.shape_str());
}

}  // namespace

Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                    const Tensor& running_mean, const Tensor& running_var, bool training,
                    float momentum, float eps) {
  detail::check_input("batch_norm2d", "input", x, 4);
  check_channel_vector("weight", gamma, x);
  check_channel_vector("bias", beta, x);
  check_channel_vector("running_mean", running_mean, x);
  check_channel_vector("running_var", running_var, x);
  ICH_CHECK(eps > 0.0f, "batch_norm2d: eps " << eps << " must be positive");
  const int n = detail::to_int(x.dim(0), "batch_norm2d batch");
  const int c = detail::to_int(x.dim(1), "batch_norm2d channels");
  const int64_t hw = x.dim(2) * x.dim(3);
  Backend& be = x.backend();
  Tensor y = Tensor::empty(x.shape(), x.device());

  if (training) {
    ICH_CHECK(int64_t(n) * hw > 1,
              "batch_norm2d: training needs more than one value per channel, "
              "got input "
                  << x.shape_str());
    ICH_CHECK(momentum >= 0.0f && momentum <= 1.0f,
              "batch_norm2d: momentum " << momentum << " must be in [0, 1]");
    Tensor save_mean = Tensor::empty({c}, x.device());
    Tensor save_invstd = Tensor::empty({c}, x.device());
    be.batch_norm2d_forward_train(x.data<float>(), y.data<float>(), gamma.data<float>(),
                                  beta.data<float>(), running_mean.data<float>(),
                                  running_var.data<float>(), save_mean.data<float>(),
                                  save_invstd.data<float>(), n, c, hw, momentum, eps);
    record(y, "batch_norm2d(train)", {x, gamma, beta},
           [x = x.detach(), gamma = gamma.detach(), save_mean, save_invstd, n, c, hw](
               const Tensor& dy, const std::vector<bool>&) -> std::vector<Tensor> {
             Tensor dx = Tensor::empty(x.shape(), dy.device());
             Tensor dgamma = Tensor::empty({c}, dy.device());
             Tensor dbeta = Tensor::empty({c}, dy.device());
             dy.backend().batch_norm2d_backward(
                 dy.data<float>(), x.data<float>(), gamma.data<float>(), save_mean.data<float>(),
                 save_invstd.data<float>(), dx.data<float>(), dgamma.data<float>(),
                 dbeta.data<float>(), n, c, hw);
             return {dx, dgamma, dbeta};
           });
    return y;
  }

  be.batch_norm2d_forward_eval(x.data<float>(), y.data<float>(), gamma.data<float>(),
                               beta.data<float>(), running_mean.data<float>(),
                               running_var.data<float>(), n, c, hw, eps);
  // Eval mode is y = gamma * (x - rm) / sqrt(rv + eps) + beta with constant statistics, so
  // its backward is made of the eval forward itself: dx = eval(dy) with beta = rm = 0,
  // xhat = eval(x) with gamma = 1, beta = 0.
  record(
      y, "batch_norm2d(eval)", {x, gamma, beta},
      [x = x.detach(), gamma = gamma.detach(), rm = running_mean.clone(), rv = running_var.clone(),
       n, c, hw, eps](const Tensor& dy, const std::vector<bool>& needs) -> std::vector<Tensor> {
        Backend& be = dy.backend();
        const Tensor zeros = Tensor::zeros({c}, dy.device());
        Tensor dx, dgamma, dbeta;
        if (needs[0]) {
          dx = Tensor::empty(x.shape(), dy.device());
          be.batch_norm2d_forward_eval(dy.data<float>(), dx.data<float>(), gamma.data<float>(),
                                       zeros.data<float>(), zeros.data<float>(), rv.data<float>(),
                                       n, c, hw, eps);
        }
        if (needs[1]) {
          const Tensor ones = Tensor::ones({c}, dy.device());
          Tensor xhat = Tensor::empty(x.shape(), dy.device());
          be.batch_norm2d_forward_eval(x.data<float>(), xhat.data<float>(), ones.data<float>(),
                                       zeros.data<float>(), rm.data<float>(), rv.data<float>(), n,
                                       c, hw, eps);
          Tensor dy_xhat = Tensor::empty(x.shape(), dy.device());
          be.mul(xhat.data<float>(), dy.data<float>(), dy_xhat.data<float>(), dy.numel());
          dgamma = Tensor::empty({c}, dy.device());
          be.bias_grad(dy_xhat.data<float>(), dgamma.data<float>(), n, c, hw);
        }
        if (needs[2]) {
          dbeta = Tensor::empty({c}, dy.device());
          be.bias_grad(dy.data<float>(), dbeta.data<float>(), n, c, hw);
        }
        return {dx, dgamma, dbeta};
      });
  return y;
}

}  // namespace ich
