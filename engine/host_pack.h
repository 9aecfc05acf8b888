// Tensors and gradients packed one after another into host buffers: the payload of the
// messages of data-parallel training (engine/data_parallel.cpp, engine/parameter_server.cpp).
// Device tensors are copied through their backend; the layout is the list's order, no gaps.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "engine/nn.h"
#include "engine/tensor.h"

namespace ich {

size_t total_bytes(const NamedTensors& tensors);
int64_t total_numel(const std::vector<Tensor>& tensors);

// Copies each tensor's bytes to dst, one after the other; returns the end.
uint8_t* pack_tensors(const NamedTensors& tensors, uint8_t* dst);
// The inverse of pack_tensors, writing into the tensors' storage in place; returns the end.
const uint8_t* unpack_into(const NamedTensors& tensors, const uint8_t* src);

// Every parameter's grad as floats, one after the other; zeros where a parameter has none.
// Returns the end.
float* pack_grads(const std::vector<Tensor>& params, float* dst);
// Makes the p.numel() floats at src the grad of p: in place when that grad is nobody else's,
// else in a new tensor (autograd may hand the same gradient tensor to several leaves).
void set_grad_from_host(Tensor& p, const float* src);

}  // namespace ich
