// Autograd: a define-by-run tape, as in PyTorch.
//
// An op whose inputs require grad (while grad mode is on) gives its output a grad_fn: a
// Node that holds the op's inputs and a backward rule (a closure over what the rule needs,
// e.g. the conv input or the pooling argmax). Tensor::backward() walks the nodes reachable
// from the output in reverse topological order, calls each rule once with the summed
// gradient of its output, and
//   - accumulates (+=) into the .grad of leaves that require grad (parameters), across
//     backward calls too, until zero_grad();
//   - sums the gradients of a tensor used by several ops (fan-out, the U-Net skips).
// After a backward the nodes it ran drop their saved tensors (nothing is retained); a
// second backward through the same graph throws ich::Error.
//
// Backward rules are written once, in engine/ops_*.cpp, in terms of backend primitives;
// they run on whatever device the tensors live on.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "engine/tensor.h"

namespace ich {

// gradient of the node's output -> one gradient per input (an undefined Tensor where the
// input needs none). needs_grad[i] tells the rule which inputs want a gradient.
using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output,
                                                     const std::vector<bool>& needs_grad)>;

class Node {
 public:
  Node(std::string name, std::vector<Tensor> inputs, BackwardFn backward);

  const std::string& name() const { return name_; }
  const std::vector<Tensor>& inputs() const { return inputs_; }
  bool released() const { return released_; }

  // Runs the rule; checks that it returned one gradient per input, each shaped like it.
  std::vector<Tensor> apply(const Tensor& grad_output);
  // Drops the inputs and everything the rule saved.
  void release();

 private:
  std::string name_;
  std::vector<Tensor> inputs_;
  std::vector<bool> needs_grad_;
  BackwardFn backward_;
  bool released_ = false;
};

// Grad mode (thread-local): while off, ops record nothing.
bool grad_mode_enabled();

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad mode is on and any of `inputs` requires grad: the op must record a node.
bool any_requires_grad(const std::vector<Tensor>& inputs);

// Gives `output` a grad_fn named `name` over `inputs` when any_requires_grad(inputs); a
// no-op otherwise. The rule must not capture `output` itself (that would be a cycle):
// capture output.detach() instead.
void record(Tensor& output, const char* name, std::vector<Tensor> inputs, BackwardFn backward);

// Runs backward from `root` with upstream gradient `grad_root` (same shape as root).
void run_backward(const Tensor& root, const Tensor& grad_root);

}  // namespace ich
