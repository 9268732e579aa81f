// What tch 0.24 does not expose and a bit-identical resume needs: the default generators' state
// (every random draw of libtorch: dropout, randint, initialisers), and an Adam whose state the
// caller owns (tch's optimizer keeps its moments inside libtorch, out of reach of a checkpoint).
// The Adam step is libtorch's own torch::optim::Adam::step, operation for operation (tch's
// bindings drop the alpha/value scalars of add_/addcmul_/addcdiv_, whose fused kernels round
// differently from a separate multiply, so it cannot be written in Rust bit-identically). A tensor crosses
// as a heap-allocated at::Tensor*, the handle tch's Tensor wraps; errors come back as a malloc'd
// C string the Rust side frees.
#include <ATen/Context.h>
#include <ATen/core/Generator.h>
#include <ATen/core/Tensor.h>
#include <ATen/core/grad_mode.h>
#include <ATen/TensorOperators.h>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>

namespace {
char *copy_error(const char *what) {
  size_t n = std::strlen(what) + 1;
  char *out = static_cast<char *>(std::malloc(n));
  if (out != nullptr) std::memcpy(out, what, n);
  return out;
}

at::Generator default_generator(int cuda_index) {
  if (cuda_index < 0) return at::detail::getDefaultCPUGenerator();
  return at::globalContext().defaultGenerator(
      c10::Device(c10::DeviceType::CUDA, static_cast<c10::DeviceIndex>(cuda_index)));
}
}  // namespace

extern "C" {

// The state of the CPU generator (cuda_index < 0) or of CUDA device cuda_index's, as a new
// uint8 tensor; null with *err set on failure.
void *longtail_rng_get_state(int cuda_index, char **err) {
  *err = nullptr;
  try {
    at::Generator g = default_generator(cuda_index);
    std::lock_guard<std::mutex> lock(g.mutex());
    return new at::Tensor(g.get_state());
  } catch (const std::exception &e) {
    *err = copy_error(e.what());
    return nullptr;
  }
}

// Restores a state from longtail_rng_get_state; returns 0, or 1 with *err set.
int longtail_rng_set_state(int cuda_index, const void *state, char **err) {
  *err = nullptr;
  try {
    at::Generator g = default_generator(cuda_index);
    std::lock_guard<std::mutex> lock(g.mutex());
    g.set_state(*static_cast<const at::Tensor *>(state));
    return 0;
  } catch (const std::exception &e) {
    *err = copy_error(e.what());
    return 1;
  }
}

// zero_grad(set_to_none = true) over n parameters.
void longtail_zero_grad(int64_t n, void *const *params) {
  for (int64_t i = 0; i < n; ++i) static_cast<at::Tensor *>(params[i])->mutable_grad().reset();
}

// One Adam step over n parameters as torch::optim::Adam::step does it (no amsgrad): a parameter
// without a gradient is skipped and its step count stays; steps[i] counts parameter i's updates.
// exp_avg[i] / exp_avg_sq[i] are zero tensors shaped like the parameter before its first update.
int longtail_adam_step(int64_t n, void *const *params, void *const *exp_avg,
                       void *const *exp_avg_sq, int64_t *steps, double lr, double beta1,
                       double beta2, double eps, double weight_decay, char **err) {
  *err = nullptr;
  try {
    at::NoGradGuard no_grad;
    for (int64_t i = 0; i < n; ++i) {
      at::Tensor &p = *static_cast<at::Tensor *>(params[i]);
      if (!p.grad().defined()) continue;
      at::Tensor grad = p.grad();
      at::Tensor &m = *static_cast<at::Tensor *>(exp_avg[i]);
      at::Tensor &v = *static_cast<at::Tensor *>(exp_avg_sq[i]);
      steps[i] += 1;
      double bias_correction1 = 1 - std::pow(beta1, steps[i]);
      double bias_correction2 = 1 - std::pow(beta2, steps[i]);
      if (weight_decay != 0) grad = grad.add(p, weight_decay);
      m.mul_(beta1).add_(grad, 1 - beta1);
      v.mul_(beta2).addcmul_(grad, grad, 1 - beta2);
      at::Tensor denom = (v.sqrt() / std::sqrt(bias_correction2)).add_(eps);
      double step_size = lr / bias_correction1;
      p.addcdiv_(m, denom, -step_size);
    }
    return 0;
  } catch (const std::exception &e) {
    *err = copy_error(e.what());
    return 1;
  }
}

// Makes the tensor's gradient undefined (what zero_grad(set_to_none) does to each parameter).
void longtail_grad_set_none(void *tensor) {
  static_cast<at::Tensor *>(tensor)->mutable_grad().reset();
}

void longtail_free_error(char *err) { std::free(err); }
}
