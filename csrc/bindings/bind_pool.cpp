// _C.{max,avg,adaptive_avg}_pool2d_{forward,backward}: argument checks, then the pooling
// kernels with the GIL released. Python allocates outputs (and the int64 argmax indices).
// 1-D pooling is called as 2-D with H = KH = 1 (a free reshape on the Python side).
#include <pybind11/stl.h>

#include <array>

#include "common.h"
#include "window_params.h"
#include "pool.h"

namespace py = pybind11;
using namespace lamina_py;

namespace {

// x_like: the (N, C, H, W) input (or grad_input) array that fixes the sizes.
lamina::PoolParams make_params(const py::array& x_like, const char* xname, Pair kernel, Pair stride,
                               Pair padding, Pair dilation, bool ceil_mode) {
  check_ndim(x_like, xname, 4);
  if (kernel[0] <= 0 || kernel[1] <= 0) value_error("kernel_size: expected positive integers, got ", pair_str(kernel));
  check_bounded(kernel, "kernel_size");
  check_stride_padding_dilation(stride, padding, dilation);
  if (2 * padding[0] > kernel[0] || 2 * padding[1] > kernel[1])
    value_error("padding: expected at most half the kernel size ", pair_str(kernel), ", got ", pair_str(padding));
  lamina::PoolParams p;
  p.N = x_like.shape(0); p.C = x_like.shape(1); p.H = x_like.shape(2); p.W = x_like.shape(3);
  p.KH = kernel[0]; p.KW = kernel[1];
  p.stride_h = stride[0]; p.stride_w = stride[1];
  p.pad_h = padding[0]; p.pad_w = padding[1];
  p.dil_h = dilation[0]; p.dil_w = dilation[1];
  p.ceil_mode = ceil_mode;
  if (p.C == 0 || p.H == 0 || p.W == 0) value_error(xname, ": expected non-empty (C, H, W), got shape ", shape_str(x_like));
  if (p.OH() <= 0 || p.OW() <= 0)
    value_error("kernel_size: window ", pair_str(kernel), " (dilation ", pair_str(dilation),
                ") is larger than the padded input ", p.H + 2 * p.pad_h, "x", p.W + 2 * p.pad_w);
  const char* err = lamina::pool_params_error(p);
  if (err[0]) value_error(err);
  return p;
}

void max_pool2d_forward(const py::array& x, const py::array& y, const py::array& indices, Pair kernel,
                        Pair stride, Pair padding, Pair dilation, bool ceil_mode) {
  const auto p = make_params(x, "input", kernel, stride, padding, dilation, ceil_mode);
  check_same_dtype(x, "input", y, "out");
  check_shape(y, "out", {p.N, p.C, p.OH(), p.OW()});
  check_shape(indices, "indices", {p.N, p.C, p.OH(), p.OW()});
  check_no_alias(y, "out", x, "input");
  check_no_alias(indices, "indices", x, "input");
  check_no_alias(indices, "indices", y, "out");
  int64_t* ip = data_of<int64_t>(indices, "indices", true);
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = data_of<T>(x, "input");
    T* yp = data_of<T>(y, "out", true);
    py::gil_scoped_release nogil;
    lamina::max_pool2d_forward<T>(p, xp, yp, ip);
  });
}

void max_pool2d_backward(const py::array& dy, const py::array& indices, const py::array& dx, Pair kernel,
                         Pair stride, Pair padding, Pair dilation, bool ceil_mode) {
  const auto p = make_params(dx, "grad_input", kernel, stride, padding, dilation, ceil_mode);
  check_same_dtype(dx, "grad_input", dy, "grad_output");
  check_shape(dy, "grad_output", {p.N, p.C, p.OH(), p.OW()});
  check_shape(indices, "indices", {p.N, p.C, p.OH(), p.OW()});
  check_no_alias(dx, "grad_input", dy, "grad_output");
  check_no_alias(dx, "grad_input", indices, "indices");
  const int64_t* ip = data_of<int64_t>(indices, "indices");
  // Indices come from Python: check the range so a bad one cannot write out of bounds.
  // The one exception: a (dilated) window with no tap inside the input has max -inf and an
  // out-of-plane index, and routes no gradient, as in PyTorch.
  const int64_t OH = p.OH(), OW = p.OW(), n = p.N * p.C * OH * OW, HW = p.H * p.W;
  auto taps_inside = [](int64_t o, int64_t stride, int64_t pad, int64_t dil, int64_t k, int64_t size) {
    for (int64_t t = 0; t < k; ++t) {
      const int64_t i = o * stride - pad + t * dil;
      if (i >= 0 && i < size) return true;
    }
    return false;
  };
  for (int64_t i = 0; i < n; ++i) {
    if (ip[i] >= 0 && ip[i] < HW) continue;
    const int64_t oh = (i / OW) % OH, ow = i % OW;
    if (taps_inside(oh, p.stride_h, p.pad_h, p.dil_h, p.KH, p.H) &&
        taps_inside(ow, p.stride_w, p.pad_w, p.dil_w, p.KW, p.W))
      value_error("indices: expected values in [0, ", HW, "), got ", ip[i]);
  }
  dispatch_float(dx, "grad_input", [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = data_of<T>(dy, "grad_output");
    T* dxp = data_of<T>(dx, "grad_input", true);
    py::gil_scoped_release nogil;
    lamina::max_pool2d_backward<T>(p, dyp, ip, dxp);
  });
}

void avg_pool2d_forward(const py::array& x, const py::array& y, Pair kernel, Pair stride, Pair padding,
                        bool ceil_mode, bool count_include_pad, int64_t divisor_override) {
  const auto p = make_params(x, "input", kernel, stride, padding, {1, 1}, ceil_mode);
  if (divisor_override < 0) value_error("divisor_override: expected a positive integer or 0 (none), got ", divisor_override);
  check_same_dtype(x, "input", y, "out");
  check_shape(y, "out", {p.N, p.C, p.OH(), p.OW()});
  check_no_alias(y, "out", x, "input");
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = data_of<T>(x, "input");
    T* yp = data_of<T>(y, "out", true);
    py::gil_scoped_release nogil;
    lamina::avg_pool2d_forward<T>(p, xp, yp, count_include_pad, divisor_override);
  });
}

void avg_pool2d_backward(const py::array& dy, const py::array& dx, Pair kernel, Pair stride, Pair padding,
                         bool ceil_mode, bool count_include_pad, int64_t divisor_override) {
  const auto p = make_params(dx, "grad_input", kernel, stride, padding, {1, 1}, ceil_mode);
  if (divisor_override < 0) value_error("divisor_override: expected a positive integer or 0 (none), got ", divisor_override);
  check_same_dtype(dx, "grad_input", dy, "grad_output");
  check_shape(dy, "grad_output", {p.N, p.C, p.OH(), p.OW()});
  check_no_alias(dx, "grad_input", dy, "grad_output");
  dispatch_float(dx, "grad_input", [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = data_of<T>(dy, "grad_output");
    T* dxp = data_of<T>(dx, "grad_input", true);
    py::gil_scoped_release nogil;
    lamina::avg_pool2d_backward<T>(p, dyp, dxp, count_include_pad, divisor_override);
  });
}

// Sizes: input (N, C, H, W) and output (N, C, OH, OW) fix everything.
void check_adaptive(const py::array& big, const char* bn, const py::array& small, const char* sn) {
  check_ndim(big, bn, 4);
  check_ndim(small, sn, 4);
  check_same_dtype(big, bn, small, sn);
  if (big.shape(0) != small.shape(0) || big.shape(1) != small.shape(1))
    value_error(sn, ": expected the same (N, C) as ", bn, " ", shape_str(big), ", got ", shape_str(small));
  if (big.shape(1) == 0 || big.shape(2) == 0 || big.shape(3) == 0)
    value_error(bn, ": expected non-empty (C, H, W), got shape ", shape_str(big));
  if (small.shape(2) == 0 || small.shape(3) == 0)
    value_error("output_size: expected positive sizes, got ", shape_str(small));
  check_no_alias(small, sn, big, bn);
}

void adaptive_avg_pool2d_forward(const py::array& x, const py::array& y) {
  check_adaptive(x, "input", y, "out");
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = data_of<T>(x, "input");
    T* yp = data_of<T>(y, "out", true);
    py::gil_scoped_release nogil;
    lamina::adaptive_avg_pool2d_forward<T>(x.shape(0), x.shape(1), x.shape(2), x.shape(3), y.shape(2),
                                           y.shape(3), xp, yp);
  });
}

void adaptive_avg_pool2d_backward(const py::array& dy, const py::array& dx) {
  check_adaptive(dx, "grad_input", dy, "grad_output");
  dispatch_float(dx, "grad_input", [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = data_of<T>(dy, "grad_output");
    T* dxp = data_of<T>(dx, "grad_input", true);
    py::gil_scoped_release nogil;
    lamina::adaptive_avg_pool2d_backward<T>(dx.shape(0), dx.shape(1), dx.shape(2), dx.shape(3),
                                            dy.shape(2), dy.shape(3), dyp, dxp);
  });
}

}  // namespace

void bind_pool(py::module_& m) {
  m.def("pool_output_size", [](int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
    check_size_arg(in, "size", 0, int64_t(1) << 62);
    check_size_arg(k, "kernel", 1, kMaxParam);
    check_size_arg(s, "stride", 1, kMaxParam);  // stride 0 would be an integer division by zero (SIGFPE)
    check_size_arg(p, "padding", 0, kMaxParam);
    check_size_arg(d, "dilation", 1, kMaxParam);
    lamina::PoolParams q;
    q.H = in; q.KH = k; q.stride_h = s; q.pad_h = p; q.dil_h = d; q.ceil_mode = ceil_mode;
    return q.OH();
  }, py::arg("size"), py::arg("kernel"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
     py::arg("ceil_mode"), "Pooled extent, PyTorch's rule (ceil mode drops a window starting in the right padding).");
  m.def("max_pool2d_forward", &max_pool2d_forward, py::arg("input"), py::arg("out"), py::arg("indices"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("ceil_mode"),
        "out, indices (int64, flat index into each H*W plane) = max_pool2d(input). Ties: first max; NaN wins.");
  m.def("max_pool2d_backward", &max_pool2d_backward, py::arg("grad_output"), py::arg("indices"),
        py::arg("grad_input"), py::arg("kernel_size"), py::arg("stride"), py::arg("padding"),
        py::arg("dilation"), py::arg("ceil_mode"), "grad_input = zeros, then += grad_output at indices.");
  m.def("avg_pool2d_forward", &avg_pool2d_forward, py::arg("input"), py::arg("out"), py::arg("kernel_size"),
        py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"), py::arg("count_include_pad"),
        py::arg("divisor_override") = 0);
  m.def("avg_pool2d_backward", &avg_pool2d_backward, py::arg("grad_output"), py::arg("grad_input"),
        py::arg("kernel_size"), py::arg("stride"), py::arg("padding"), py::arg("ceil_mode"),
        py::arg("count_include_pad"), py::arg("divisor_override") = 0);
  m.def("adaptive_avg_pool2d_forward", &adaptive_avg_pool2d_forward, py::arg("input"), py::arg("out"),
        "out (N, C, OH, OW): the output size is taken from out's shape.");
  m.def("adaptive_avg_pool2d_backward", &adaptive_avg_pool2d_backward, py::arg("grad_output"), py::arg("grad_input"));
}
