// batch_norm2d: train mode (batch statistics, running buffers updated) and eval mode
// (running statistics), each with its backward; sync_batch_norm2d: train mode with the
// statistics of every rank of a data-parallel job.
#include <cmath>
#include <vector>

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

// The per-channel affine map y = a[ch] * (x[ch] - m[ch]) + b[ch] over x (n, c, hw), made of
// the eval-mode forward: with running_var 0 and eps 1 its 1 / sqrt(var + eps) is exactly 1.
void channel_affine(Backend& be, const Device& device, const float* x, float* y,
                    const std::vector<float>& a, const std::vector<float>& m,
                    const std::vector<float>& b, int n, int c, int64_t hw) {
  const Shape shape{int64_t(c)};
  const Tensor ta = Tensor::from_host(a, shape, device);
  const Tensor tm = Tensor::from_host(m, shape, device);
  const Tensor tb = Tensor::from_host(b, shape, device);
  const Tensor zero_var = Tensor::zeros(shape, device);
  be.batch_norm2d_forward_eval(x, y, ta.data<float>(), tb.data<float>(), tm.data<float>(),
                               zero_var.data<float>(), n, c, hw, 1.0f);
}

// Per-channel sums of x (n, c, hw) on the host, by the bias-gradient primitive.
std::vector<double> channel_sums(Backend& be, const Device& device, const float* x, int n, int c,
                                 int64_t hw) {
  Tensor sums = Tensor::empty({int64_t(c)}, device);
  be.bias_grad(x, sums.data<float>(), n, c, hw);
  const std::vector<float> host = sums.to_host();
  return std::vector<double>(host.begin(), host.end());
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

Tensor sync_batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& running_mean, const Tensor& running_var, ProcessGroup& group,
                         float momentum, float eps) {
  detail::check_input("sync_batch_norm2d", "input", x, 4);
  check_channel_vector("weight", gamma, x);
  check_channel_vector("bias", beta, x);
  check_channel_vector("running_mean", running_mean, x);
  check_channel_vector("running_var", running_var, x);
  ICH_CHECK(eps > 0.0f, "sync_batch_norm2d: eps " << eps << " must be positive");
  ICH_CHECK(momentum >= 0.0f && momentum <= 1.0f,
            "sync_batch_norm2d: momentum " << momentum << " must be in [0, 1]");
  const int n = detail::to_int(x.dim(0), "sync_batch_norm2d batch");
  const int c = detail::to_int(x.dim(1), "sync_batch_norm2d channels");
  const int64_t hw = x.dim(2) * x.dim(3);
  const Device device = x.device();
  Backend& be = x.backend();
  const std::vector<float> zeros(size_t(c), 0.0f), ones(size_t(c), 1.0f);

  // This rank's count, mean and sum of squared deviations from that mean (two passes, so
  // nothing cancels), as [count, mean (c), m2 (c)].
  const double count = double(n) * double(hw);
  std::vector<double> mine(size_t(2 * c + 1), 0.0);
  mine[0] = count;
  if (count > 0) {
    const std::vector<double> sums = channel_sums(be, device, x.data<float>(), n, c, hw);
    std::vector<float> local_mean(static_cast<size_t>(c));
    for (int ch = 0; ch < c; ++ch) local_mean[size_t(ch)] = float(sums[size_t(ch)] / count);
    Tensor centred = Tensor::empty(x.shape(), device);
    channel_affine(be, device, x.data<float>(), centred.data<float>(), ones, local_mean, zeros, n,
                   c, hw);
    Tensor squares = Tensor::empty(x.shape(), device);
    be.mul(centred.data<float>(), centred.data<float>(), squares.data<float>(), x.numel());
    const std::vector<double> m2 = channel_sums(be, device, squares.data<float>(), n, c, hw);
    for (int ch = 0; ch < c; ++ch) {
      // The mean that was subtracted (float), so m2 is the deviation from it exactly.
      mine[size_t(1 + ch)] = double(local_mean[size_t(ch)]);
      mine[size_t(1 + c + ch)] = m2[size_t(ch)];
    }
  }
  const int ranks = group.size();
  std::vector<double> all(size_t(ranks) * mine.size());
  group.allgather(mine.data(), int64_t(mine.size()), all.data());

  // Chan's merge in rank order: the same arithmetic, hence the same bits, on every rank.
  double total = 0.0;
  std::vector<double> mean(size_t(c), 0.0), m2(size_t(c), 0.0);
  for (int r = 0; r < ranks; ++r) {
    const double* part = all.data() + size_t(r) * mine.size();
    const double nb = part[0];
    if (nb <= 0) continue;
    const double merged = total + nb;
    for (int ch = 0; ch < c; ++ch) {
      const double delta = part[1 + ch] - mean[size_t(ch)];
      mean[size_t(ch)] += delta * nb / merged;
      m2[size_t(ch)] += part[1 + c + ch] + delta * delta * total * nb / merged;
    }
    total = merged;
  }
  ICH_CHECK(total > 1, "sync_batch_norm2d: training needs more than one value per channel over "
                           << ranks << " rank(s), got input " << x.shape_str() << " here");
  std::vector<float> mean_f(static_cast<size_t>(c)), var_f(static_cast<size_t>(c)),
      unbiased_f(static_cast<size_t>(c));
  for (int ch = 0; ch < c; ++ch) {
    mean_f[size_t(ch)] = float(mean[size_t(ch)]);
    var_f[size_t(ch)] = float(m2[size_t(ch)] / total);
    unbiased_f[size_t(ch)] = float(m2[size_t(ch)] / (total - 1));
  }
  // Running statistics, PyTorch's rule (the same float arithmetic as the backends' kernels).
  {
    std::vector<float> rm = running_mean.to_host(), rv = running_var.to_host();
    for (int ch = 0; ch < c; ++ch) {
      rm[size_t(ch)] = (1.0f - momentum) * rm[size_t(ch)] + momentum * mean_f[size_t(ch)];
      rv[size_t(ch)] = (1.0f - momentum) * rv[size_t(ch)] + momentum * unbiased_f[size_t(ch)];
    }
    be.copy_from_host(running_mean.raw_data(), rm.data(), rm.size() * sizeof(float));
    be.copy_from_host(running_var.raw_data(), rv.data(), rv.size() * sizeof(float));
  }

  const Tensor global_mean = Tensor::from_host(mean_f, {int64_t(c)}, device);
  const Tensor global_var = Tensor::from_host(var_f, {int64_t(c)}, device);
  Tensor y = Tensor::empty(x.shape(), device);
  if (x.numel() > 0) {
    be.batch_norm2d_forward_eval(x.data<float>(), y.data<float>(), gamma.data<float>(),
                                 beta.data<float>(), global_mean.data<float>(),
                                 global_var.data<float>(), n, c, hw, eps);
  }
  record(y, "sync_batch_norm2d", {x, gamma, beta},
         [x = x.detach(), gamma = gamma.detach(), global_mean, global_var, var_f, group = &group,
          total, n, c, hw,
          eps](const Tensor& dy, const std::vector<bool>& needs) -> std::vector<Tensor> {
           Backend& be = dy.backend();
           const Device device = dy.device();
           const std::vector<float> zeros(size_t(c), 0.0f);
           // xhat = (x - mean) * invstd, the normalisation of the forward.
           Tensor xhat = Tensor::empty(x.shape(), device);
           Tensor dy_xhat = Tensor::empty(x.shape(), device);
           const Tensor zero = Tensor::zeros({int64_t(c)}, device);
           const Tensor one = Tensor::ones({int64_t(c)}, device);
           std::vector<double> sum_dy(size_t(c), 0.0), sum_dy_xhat(size_t(c), 0.0);
           if (x.numel() > 0) {
             be.batch_norm2d_forward_eval(x.data<float>(), xhat.data<float>(), one.data<float>(),
                                          zero.data<float>(), global_mean.data<float>(),
                                          global_var.data<float>(), n, c, hw, eps);
             be.mul(dy.data<float>(), xhat.data<float>(), dy_xhat.data<float>(), dy.numel());
             sum_dy = channel_sums(be, device, dy.data<float>(), n, c, hw);
             sum_dy_xhat = channel_sums(be, device, dy_xhat.data<float>(), n, c, hw);
           }
           Tensor dx, dgamma, dbeta;
           if (needs[1]) {
             dgamma = Tensor::from_host(std::vector<float>(sum_dy_xhat.begin(), sum_dy_xhat.end()),
                                        {int64_t(c)}, device);
           }
           if (needs[2]) {
             dbeta = Tensor::from_host(std::vector<float>(sum_dy.begin(), sum_dy.end()),
                                       {int64_t(c)}, device);
           }
           if (!needs[0]) return {dx, dgamma, dbeta};
           // The sums over every rank's samples, added in rank order (the same on every rank).
           std::vector<double> mine(size_t(2 * c));
           std::copy(sum_dy.begin(), sum_dy.end(), mine.begin());
           std::copy(sum_dy_xhat.begin(), sum_dy_xhat.end(), mine.begin() + c);
           std::vector<double> all(size_t(group->size()) * mine.size());
           group->allgather(mine.data(), int64_t(mine.size()), all.data());
           std::vector<double> global(mine.size(), 0.0);
           for (int r = 0; r < group->size(); ++r)
             for (size_t i = 0; i < mine.size(); ++i) global[i] += all[size_t(r) * mine.size() + i];
           // dx = k (dy - mean(dy)) - k mean(dy xhat) xhat, k = gamma * invstd: two affine maps.
           const std::vector<float> g = gamma.to_host();
           std::vector<float> k(static_cast<size_t>(c)), shift(static_cast<size_t>(c)),
               k_xhat(static_cast<size_t>(c));
           for (int ch = 0; ch < c; ++ch) {
             const double invstd = 1.0 / std::sqrt(double(var_f[size_t(ch)]) + double(eps));
             const double kd = double(g[size_t(ch)]) * invstd;
             k[size_t(ch)] = float(kd);
             shift[size_t(ch)] = float(global[size_t(ch)] / total);
             k_xhat[size_t(ch)] = float(-kd * global[size_t(c + ch)] / total);
           }
           dx = Tensor::empty(x.shape(), device);
           if (x.numel() > 0) {
             channel_affine(be, device, dy.data<float>(), dx.data<float>(), k, shift, zeros, n, c,
                            hw);
             // dy_xhat is no longer needed: it takes the second term.
             channel_affine(be, device, xhat.data<float>(), dy_xhat.data<float>(), k_xhat, zeros,
                            zeros, n, c, hw);
             be.axpy(1.0f, dy_xhat.data<float>(), dx.data<float>(), dx.numel());
           }
           return {dx, dgamma, dbeta};
         });
  return y;
}

}  // namespace ich
