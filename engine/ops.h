// Differentiable ops. Each runs its forward on the backend of its inputs' device and,
// when an input requires grad, records its backward rule on the tape (engine/autograd.h).
// Inputs must be float32, on one device, with the shapes stated; anything else throws
// ich::Error saying which op, which tensor, and what was expected.
//
// One family per file: ops_conv.cpp, ops_pool.cpp, ops_upsample.cpp, ops_norm.cpp,
// ops_activation.cpp, ops_elementwise.cpp, ops_loss.cpp.
#pragma once

#include <string>

#include "engine/autograd.h"
#include "engine/process_group.h"
#include "engine/tensor.h"

namespace ich {

// ---- convolution (ops_conv.cpp)
// x (N, C, H, W), weight (K, C, KH, KW), bias (K) or undefined -> (N, K, OH, OW).
// The im2col workspace is allocated by the op for the call.
Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, int pad = 1,
              int stride = 1);

// ---- pooling (ops_pool.cpp)
// Max pooling, floor mode: x (N, C, H, W) -> (N, C, (H - k) / stride + 1, ...).
Tensor max_pool2d(const Tensor& x, int kernel = 2, int stride = 2);

// ---- upsampling (ops_upsample.cpp)
// Bilinear, PyTorch's upsample_bilinear2d: x (N, C, H, W) -> (N, C, out_h, out_w).
Tensor upsample_bilinear2d(const Tensor& x, int out_h, int out_w, bool align_corners);
// The same with out = scale * in.
Tensor upsample_bilinear2d_scale(const Tensor& x, int scale, bool align_corners);

// ---- normalisation (ops_norm.cpp)
// x (N, C, H, W); gamma, beta, running_mean, running_var (C). Training: normalises with
// the batch statistics and updates the running buffers in place (PyTorch's rule, running
// variance unbiased); eval: normalises with the running statistics.
Tensor batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                    const Tensor& running_mean, const Tensor& running_var, bool training,
                    float momentum = 0.1f, float eps = 1e-5f);
// Synchronised batch norm, training mode (PyTorch's SyncBatchNorm): the per-channel mean
// and biased variance are those of the samples of every rank of `group` together (count
// M = sum of the ranks' N*H*W; each rank's count, mean and sum of squared deviations,
// merged in rank order by Chan's formula in double, so every rank gets the same
// statistics), x is normalised with them, and the running buffers are updated with the
// global mean and unbiased variance M2 / (M - 1): they stay identical on every rank.
// Backward: dgamma = sum of dy*xhat and dbeta = sum of dy over this rank's samples (the
// data-parallel gradient average then combines the ranks, as for any parameter); dx =
// gamma*invstd*(dy - mean(dy) - xhat*mean(dy*xhat)), the means over all ranks' samples.
// One all-gather in the forward (2C+1 doubles per rank) and one in the backward (2C);
// every rank must run the same sequence of these ops. Composed of backend primitives
// (bias_grad as the channel sum, the eval-mode forward as a per-channel affine map, mul,
// add), so every backend runs it; device data goes through host buffers for the exchange.
Tensor sync_batch_norm2d(const Tensor& x, const Tensor& gamma, const Tensor& beta,
                         const Tensor& running_mean, const Tensor& running_var, ProcessGroup& group,
                         float momentum = 0.1f, float eps = 1e-5f);

// ---- activations and dropout (ops_activation.cpp)
Tensor relu(const Tensor& x);
// The same, written into x's memory when x is a temporary that nothing else holds (the
// U-Net's relu(conv(x))): saves one activation-sized buffer and a third of the memory
// traffic. The backward needs only the output (y > 0 exactly where x > 0, NaN included).
Tensor relu(Tensor&& x);
Tensor sigmoid(const Tensor& x);
// Zeroes whole channels of x (N, C, H, W) with probability p and scales the rest by
// 1 / (1 - p); draws N*C numbers from `gen` (which advances). Identity when !training
// or p == 0. p in [0, 1).
Tensor dropout2d(const Tensor& x, float p, bool training, Generator& gen);
// The same, written into x's memory when x is a temporary that nothing else holds (the
// U-Net's dropout2d(batch_norm2d(...))); the backward needs only the mask.
Tensor dropout2d(Tensor&& x, float p, bool training, Generator& gen);

// ---- elementwise, shape and reductions (ops_elementwise.cpp)
Tensor add(const Tensor& a, const Tensor& b);  // same shapes, no broadcasting
Tensor mul(const Tensor& a, const Tensor& b);  // same shapes, no broadcasting
Tensor scale(const Tensor& x, float alpha);
Tensor sum(const Tensor& x);   // -> (1)
Tensor mean(const Tensor& x);  // -> (1)
// Channel concat: a (N, Ca, H, W), b (N, Cb, H, W) -> (N, Ca + Cb, H, W).
Tensor concat_channels(const Tensor& a, const Tensor& b);
// Same data, new shape of the same element count (shares storage).
Tensor reshape(const Tensor& x, const Shape& shape);

// ---- losses (ops_loss.cpp); p are probabilities, target the same shape in [0, 1] and
// not requiring grad. Each returns a (1) tensor.
// medicaltorch's dice_loss, the global form over the whole batch, returned NEGATIVE:
//   -(2 sum(p t) + smooth) / (sum p + sum t + smooth)   in [-1, 0); -1 is a perfect match.
Tensor soft_dice_loss(const Tensor& p, const Tensor& target, float smooth = 1e-4f);
// Mean binary cross-entropy (log clamped at -100, as torch.nn.BCELoss).
Tensor bce_loss(const Tensor& p, const Tensor& target);
// bce_weight * bce + dice_weight * soft_dice (the negative dice, so the minimum is
// -dice_weight).
Tensor dice_bce_loss(const Tensor& p, const Tensor& target, float dice_weight = 1.0f,
                     float bce_weight = 1.0f);

// Throws ich::Error ("loss is NaN at step 12 ...") when any element of t is NaN or Inf.
// Copies t to the host (one value for a loss), so call it where a sync is acceptable.
void check_finite(const Tensor& t, const std::string& context);

}  // namespace ich
