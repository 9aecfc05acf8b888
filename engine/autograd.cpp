#include "engine/autograd.h"

#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace ich {

namespace {

thread_local bool t_grad_mode = true;

// target += g. `target` is replaced by a new tensor when someone else may see it (a rule
// that passed its upstream gradient through), written in place otherwise.
void accumulate_into(Tensor& target, Tensor g) {
  if (!target.defined()) {
    target = std::move(g);
    return;
  }
  check_same_device("gradient accumulation", target, g);
  check_same_shape("gradient accumulation", target, g);
  Backend& be = target.backend();
  if (target.exclusively_owned()) {
    be.axpy(1.0f, g.data<float>(), target.data<float>(), target.numel());
  } else {
    Tensor sum = Tensor::empty(target.shape(), target.device());
    be.add(target.data<float>(), g.data<float>(), sum.data<float>(), target.numel());
    target = std::move(sum);
  }
}

// Leaves keep their .grad across backward calls and the user may hold it, so the first
// gradient stored there is a private copy unless nobody else can see it.
void accumulate_into_leaf(TensorImpl& leaf, Tensor g) {
  if (!leaf.grad.defined()) {
    leaf.grad = g.exclusively_owned() ? std::move(g) : g.clone();
    return;
  }
  check_same_device("gradient accumulation", leaf.grad, g);
  check_same_shape("gradient accumulation", leaf.grad, g);
  leaf.grad.backend().axpy(1.0f, g.data<float>(), leaf.grad.data<float>(), g.numel());
}

// Nodes reachable from root, each after every node that consumes its output.
std::vector<Node*> reverse_topological_order(Node* root) {
  std::vector<Node*> post_order;
  std::unordered_set<Node*> visited;
  std::vector<std::pair<Node*, size_t>> stack;  // node, index of the next input to visit
  stack.emplace_back(root, 0);
  visited.insert(root);
  while (!stack.empty()) {
    auto& [node, next] = stack.back();
    ICH_CHECK(!node->released(),
              "backward through the graph a second time: the saved tensors of '"
                  << node->name() << "' were freed by the first backward; run the forward again");
    if (next < node->inputs().size()) {
      const Tensor& input = node->inputs()[next++];
      if (input.defined() && input.grad_fn() && !visited.count(input.grad_fn().get())) {
        visited.insert(input.grad_fn().get());
        stack.emplace_back(input.grad_fn().get(), 0);
      }
      continue;
    }
    post_order.push_back(node);
    stack.pop_back();
  }
  return {post_order.rbegin(), post_order.rend()};
}

}  // namespace

Node::Node(std::string name, std::vector<Tensor> inputs, BackwardFn backward)
    : name_(std::move(name)), inputs_(std::move(inputs)), backward_(std::move(backward)) {
  needs_grad_.reserve(inputs_.size());
  for (const Tensor& t : inputs_) needs_grad_.push_back(t.defined() && t.requires_grad());
}

std::vector<Tensor> Node::apply(const Tensor& grad_output) {
  ICH_CHECK(!released_, "backward of '" << name_ << "' ran twice; its saved tensors are freed");
  std::vector<Tensor> grads = backward_(grad_output, needs_grad_);
  ICH_CHECK(grads.size() == inputs_.size(), "backward of '" << name_ << "' returned "
                                                            << grads.size() << " gradients for "
                                                            << inputs_.size() << " inputs");
  for (size_t i = 0; i < grads.size(); ++i) {
    if (!grads[i].defined() || !needs_grad_[i]) continue;
    ICH_CHECK(grads[i].shape() == inputs_[i].shape(),
              "backward of '" << name_ << "' returned a gradient of shape " << grads[i].shape_str()
                              << " for input " << i << " of shape " << inputs_[i].shape_str());
  }
  return grads;
}

void Node::release() {
  inputs_.clear();
  backward_ = nullptr;
  released_ = true;
}

bool grad_mode_enabled() {
  return t_grad_mode;
}

NoGradGuard::NoGradGuard() : previous_(t_grad_mode) {
  t_grad_mode = false;
}
NoGradGuard::~NoGradGuard() {
  t_grad_mode = previous_;
}

bool any_requires_grad(const std::vector<Tensor>& inputs) {
  if (!t_grad_mode) return false;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad()) return true;
  }
  return false;
}

void record(Tensor& output, const char* name, std::vector<Tensor> inputs, BackwardFn backward) {
  if (!any_requires_grad(inputs)) return;
  TensorImpl& out = *output.impl();
  out.grad_fn = std::make_shared<Node>(name, std::move(inputs), std::move(backward));
  out.requires_grad = true;
}

void run_backward(const Tensor& root, const Tensor& grad_root) {
  ICH_CHECK(root.requires_grad(),
            "backward: " << root.describe()
                         << " does not require grad (no parameter or input that requires grad "
                            "led to it, or it was computed under NoGradGuard)");
  check_same_shape("backward (upstream gradient vs output)", root, grad_root);
  check_same_device("backward (upstream gradient vs output)", root, grad_root);
  grad_root.check_dtype(DType::f32, "backward upstream gradient");

  NoGradGuard no_grad;  // the rules use primitives; nothing they do is recorded
  if (!root.grad_fn()) {
    accumulate_into_leaf(*root.impl(), grad_root);
    return;
  }

  const std::vector<Node*> order = reverse_topological_order(root.grad_fn().get());
  // Keeps every node alive until the walk is over, whatever the rules release.
  std::vector<std::shared_ptr<Node>> keep_alive;
  keep_alive.reserve(order.size());
  keep_alive.push_back(root.grad_fn());
  std::unordered_map<Node*, Tensor> pending;
  pending[root.grad_fn().get()] = grad_root;

  for (Node* node : order) {
    auto it = pending.find(node);
    Tensor grad_output;
    if (it != pending.end()) {
      grad_output = std::move(it->second);
      pending.erase(it);
    }
    if (grad_output.defined()) {
      const std::vector<Tensor> inputs = node->inputs();
      std::vector<Tensor> grads = node->apply(grad_output);
      grad_output = Tensor();
      for (size_t i = 0; i < inputs.size(); ++i) {
        const Tensor& input = inputs[i];
        if (!input.defined() || !input.requires_grad() || !grads[i].defined()) continue;
        Tensor g = std::move(grads[i]);
        if (input.grad_fn()) {
          keep_alive.push_back(input.grad_fn());
          accumulate_into(pending[input.grad_fn().get()], std::move(g));
        } else {
          accumulate_into_leaf(*input.impl(), std::move(g));
        }
      }
    }
    node->release();
  }
}

}  // namespace ich
