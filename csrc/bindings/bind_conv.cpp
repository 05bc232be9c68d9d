// _C.conv2d_forward / conv2d_backward: checks every array and parameter, then runs the
// im2col+GEMM kernels with the GIL released. Python allocates y / dx / dw / db.
// 1-D convolution is called as 2-D with H = KH = 1 (a free reshape on the Python side).
#include <pybind11/stl.h>

#include <array>

#include <string>

#include "common.h"
#include "window_params.h"
#include "conv.h"
#include "conv_block.h"
#include "conv_direct.h"

namespace py = pybind11;
using namespace lamina_py;

namespace {

lamina::ConvParams make_params(const py::array& x, const py::array& w, Pair stride, Pair padding,
                               Pair dilation, int64_t groups) {
  check_ndim(x, "input", 4);
  check_ndim(w, "weight", 4);
  check_stride_padding_dilation(stride, padding, dilation);
  if (groups <= 0) value_error("groups: expected a positive integer, got ", groups);
  lamina::ConvParams p;
  p.N = x.shape(0); p.C = x.shape(1); p.H = x.shape(2); p.W = x.shape(3);
  p.K = w.shape(0); p.KH = w.shape(2); p.KW = w.shape(3);
  p.stride_h = stride[0]; p.stride_w = stride[1];
  p.pad_h = padding[0]; p.pad_w = padding[1];
  p.dil_h = dilation[0]; p.dil_w = dilation[1];
  p.groups = groups;
  if (p.C == 0 || p.H == 0 || p.W == 0) value_error("input: expected non-empty (C, H, W), got shape ", shape_str(x));
  if (p.K == 0 || p.KH == 0 || p.KW == 0) value_error("weight: expected non-empty shape, got ", shape_str(w));
  if (p.C % groups) value_error("groups: input channels ", p.C, " are not divisible by groups=", groups);
  if (p.K % groups) value_error("groups: output channels ", p.K, " (weight.shape[0]) are not divisible by groups=", groups);
  if (w.shape(1) * groups != p.C)
    value_error("weight: expected shape[1] == in_channels/groups = ", p.C / groups, ", got weight shape ",
                shape_str(w), " for input shape ", shape_str(x), " and groups=", groups);
  if (p.H + 2 * p.pad_h < p.dil_h * (p.KH - 1) + 1 || p.W + 2 * p.pad_w < p.dil_w * (p.KW - 1) + 1)
    value_error("weight: kernel ", p.KH, "x", p.KW, " (dilation ", pair_str(dilation),
                ") is larger than the padded input ", p.H + 2 * p.pad_h, "x", p.W + 2 * p.pad_w);
  const char* err = lamina::conv_params_error(p);
  if (err[0]) value_error(err);
  return p;
}

// The optional bias of a forward conv: an array of x's dtype and shape (K,), not aliasing y;
// an empty array when b is None.
py::array checked_bias(const py::object& b, const py::array& x, const py::array& y, int64_t K) {
  if (b.is_none()) return py::array();
  if (!py::isinstance<py::array>(b)) type_error("bias: expected a numpy array or None");
  py::array barr = b.cast<py::array>();
  check_same_dtype(x, "input", barr, "bias");
  check_shape(barr, "bias", {K});
  check_no_alias(y, "out", barr, "bias");
  return barr;
}

void conv2d_forward(const py::array& x, const py::array& w, const py::object& b, const py::array& y,
                    Pair stride, Pair padding, Pair dilation, int64_t groups) {
  const auto p = make_params(x, w, stride, padding, dilation, groups);
  check_same_dtype(x, "input", w, "weight");
  check_same_dtype(x, "input", y, "out");
  check_shape(y, "out", {p.N, p.K, p.OH(), p.OW()});
  check_no_alias(y, "out", x, "input");
  check_no_alias(y, "out", w, "weight");
  const py::array barr = checked_bias(b, x, y, p.K);
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = data_of<T>(x, "input");
    const T* wp = data_of<T>(w, "weight");
    const T* bp = b.is_none() ? nullptr : data_of<T>(barr, "bias");
    T* yp = data_of<T>(y, "out", true);
    py::gil_scoped_release nogil;
    lamina::conv2d_forward<T>(p, xp, wp, bp, yp);
  });
}

void conv2d_backward(const py::array& x, const py::array& w, const py::array& dy, const py::object& dx,
                     const py::object& dw, const py::object& db, Pair stride, Pair padding,
                     Pair dilation, int64_t groups) {
  const auto p = make_params(x, w, stride, padding, dilation, groups);
  check_same_dtype(x, "input", w, "weight");
  check_same_dtype(x, "input", dy, "grad_output");
  check_shape(dy, "grad_output", {p.N, p.K, p.OH(), p.OW()});
  auto out_arg = [&](const py::object& o, const char* name, std::vector<int64_t> shape) -> py::array {
    if (o.is_none()) return py::array();
    if (!py::isinstance<py::array>(o)) type_error(name, ": expected a numpy array or None");
    py::array a = o.cast<py::array>();
    check_same_dtype(x, "input", a, name);
    check_shape(a, name, shape);
    check_no_alias(a, name, x, "input");
    check_no_alias(a, name, w, "weight");
    check_no_alias(a, name, dy, "grad_output");
    return a;
  };
  py::array dxa = out_arg(dx, "grad_input", {p.N, p.C, p.H, p.W});
  py::array dwa = out_arg(dw, "grad_weight", {p.K, p.C / p.groups, p.KH, p.KW});
  py::array dba = out_arg(db, "grad_bias", {p.K});
  if (!dx.is_none() && !dw.is_none()) check_no_alias(dxa, "grad_input", dwa, "grad_weight");
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = data_of<T>(x, "input");
    const T* wp = data_of<T>(w, "weight");
    const T* dyp = data_of<T>(dy, "grad_output");
    T* dxp = dx.is_none() ? nullptr : data_of<T>(dxa, "grad_input", true);
    T* dwp = dw.is_none() ? nullptr : data_of<T>(dwa, "grad_weight", true);
    T* dbp = db.is_none() ? nullptr : data_of<T>(dba, "grad_bias", true);
    py::gil_scoped_release nogil;
    lamina::conv2d_backward<T>(p, xp, wp, dyp, dxp, dwp, dbp);
  });
}

// The fused block's one-byte window codes: uint8, C-contiguous, of `shape`.
uint8_t* code_data(const py::array& code, const std::vector<int64_t>& shape, bool writeable) {
  uint8_t* cp = data_of<uint8_t>(code, "code", writeable);
  check_shape(code, "code", shape);
  return cp;
}

void conv2d_relu_max_pool2d_forward(const py::array& x, const py::array& w, const py::object& b, const py::array& y,
                                    const py::array& code, Pair stride, Pair padding, Pair dilation, int64_t groups) {
  const auto p = make_params(x, w, stride, padding, dilation, groups);
  const std::string e = lamina::conv_block_error(p);
  if (!e.empty()) value_error(e);
  check_same_dtype(x, "input", w, "weight");
  check_same_dtype(x, "input", y, "out");
  check_shape(y, "out", {p.N, p.K, p.OH() / 2, p.OW() / 2});
  uint8_t* cp = code_data(code, {p.N, p.K, p.OH() / 2, p.OW() / 2}, true);
  for (const py::array* a : {&y, &code}) {
    check_no_alias(*a, "out", x, "input");
    check_no_alias(*a, "out", w, "weight");
  }
  check_no_alias(y, "out", code, "code");
  const py::array barr = checked_bias(b, x, y, p.K);
  dispatch_float(x, "input", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = data_of<T>(x, "input");
    const T* wp = data_of<T>(w, "weight");
    const T* bp = b.is_none() ? nullptr : data_of<T>(barr, "bias");
    T* yp = data_of<T>(y, "out", true);
    py::gil_scoped_release nogil;
    lamina::conv2d_relu_max_pool2d_forward<T>(p, xp, wp, bp, yp, cp);
  });
}

void relu_max_pool2d_backward(const py::array& dy, const py::array& code, const py::array& dz) {
  check_ndim(dy, "grad_output", 4);
  check_ndim(dz, "grad_conv", 4);
  lamina::ConvParams p;   // only N, K, OH(), OW() matter: a 1x1 conv of (N, 1, OH, OW) -> (N, K, OH, OW)
  p.N = dz.shape(0); p.K = dz.shape(1); p.C = 1; p.H = dz.shape(2); p.W = dz.shape(3); p.KH = p.KW = 1;
  check_shape(dy, "grad_output", {p.N, p.K, p.H / 2, p.W / 2});
  const uint8_t* cp = code_data(code, {p.N, p.K, p.H / 2, p.W / 2}, false);
  check_same_dtype(dy, "grad_output", dz, "grad_conv");
  check_no_alias(dz, "grad_conv", dy, "grad_output");
  check_no_alias(dz, "grad_conv", code, "code");
  dispatch_float(dy, "grad_output", [&](auto tag) {
    using T = decltype(tag);
    const T* dyp = data_of<T>(dy, "grad_output");
    T* dzp = data_of<T>(dz, "grad_conv", true);
    py::gil_scoped_release nogil;
    lamina::relu_max_pool2d_backward<T>(p, dyp, cp, dzp);
  });
}

}  // namespace

void bind_conv(py::module_& m) {
  m.def("conv2d_relu_max_pool2d_forward", &conv2d_relu_max_pool2d_forward, py::arg("input"), py::arg("weight"),
        py::arg("bias"), py::arg("out"), py::arg("code"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
        py::arg("groups"),
        "out (N, K, OH//2, OW//2) = max_pool2d(relu(conv2d(input, weight) + bias), 2) in one pass; code (uint8, "
        "same shape) = the window position of each max (0..3), or 4 where relu' is 0 (csrc/conv_block.h).");
  m.def("relu_max_pool2d_backward", &relu_max_pool2d_backward, py::arg("grad_output"), py::arg("code"),
        py::arg("grad_conv"),
        "grad_conv (N, K, OH, OW) = the gradient at the conv output from grad_output and code (N, K, OH//2, OW//2).");
  m.def("conv2d_forward", &conv2d_forward, py::arg("input"), py::arg("weight"), py::arg("bias"),
        py::arg("out"), py::arg("stride"), py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        "out (N, K, OH, OW) = conv2d(input (N, C, H, W), weight (K, C/groups, KH, KW)) + bias (K,) or None.\n"
        "stride, padding, dilation are (h, w) pairs; out is written in place.");
  m.def("conv2d_backward", &conv2d_backward, py::arg("input"), py::arg("weight"), py::arg("grad_output"),
        py::arg("grad_input"), py::arg("grad_weight"), py::arg("grad_bias"), py::arg("stride"),
        py::arg("padding"), py::arg("dilation"), py::arg("groups"),
        "Writes the gradients of conv2d into grad_input / grad_weight / grad_bias (each may be None).");
  m.def("conv_output_size", [](int64_t in, int64_t k, int64_t s, int64_t p, int64_t d) {
    check_size_arg(in, "size", 0, int64_t(1) << 62);
    check_size_arg(k, "kernel", 1, kMaxParam);
    check_size_arg(s, "stride", 1, kMaxParam);  // stride 0 would be an integer division by zero (SIGFPE)
    check_size_arg(p, "padding", 0, kMaxParam);
    check_size_arg(d, "dilation", 1, kMaxParam);
    return (in + 2 * p - d * (k - 1) - 1) / s + 1;
  }, py::arg("size"), py::arg("kernel"), py::arg("stride"), py::arg("padding"), py::arg("dilation"),
     "floor((size + 2*padding - dilation*(kernel-1) - 1) / stride) + 1");
  m.def("_conv_set_algo", [](const std::string& name) {
    lamina::ConvAlgo a;
    if (name == "auto") a = lamina::ConvAlgo::automatic;
    else if (name == "im2col") a = lamina::ConvAlgo::im2col;
    else if (name == "winograd") a = lamina::ConvAlgo::winograd;
    else if (name == "direct") a = lamina::ConvAlgo::direct;
    else if (name == "winograd4") a = lamina::ConvAlgo::winograd4;
    else value_error("algo: expected 'auto', 'im2col', 'winograd', 'winograd4' or 'direct', got '", name, "'");
    lamina::conv_set_algo(a);
  }, py::arg("algo"),
        "Testing hook: force the convolution path ('winograd' = F(2x2, 3x3), 'winograd4' = F(4x4, 3x3), "
        "'direct' only where the shape allows it; the others fall back to im2col); 'auto' picks by the "
        "measured rules.");
  m.def("_conv_set_row_winograd", [](const std::string& mode) {
    if (mode == "auto") lamina::conv_direct_set_row_winograd(0);
    else if (mode == "on") lamina::conv_direct_set_row_winograd(1);
    else if (mode == "off") lamina::conv_direct_set_row_winograd(2);
    else value_error("mode: expected 'auto', 'on' or 'off', got '", mode, "'");
  }, py::arg("mode"),
        "Testing hook: the lane path's row Winograd F(4, 5) for 5-wide filters ('on' wherever it applies, "
        "'off' never, 'auto' the measured rule).");
  m.def("_conv_set_lane_gather", [](const std::string& mode) {
    if (mode == "auto") lamina::conv_direct_set_lane_gather(0);
    else if (mode == "transpose") lamina::conv_direct_set_lane_gather(1);
    else if (mode == "vgather") lamina::conv_direct_set_lane_gather(2);
    else value_error("mode: expected 'auto', 'transpose' or 'vgather', got '", mode, "'");
  }, py::arg("mode"),
        "Testing hook: how the AVX-512 f32 lane path gathers images into lanes ('transpose' in-register "
        "transposes, 'vgather' vgatherdps, 'auto' the measured rule).");
  m.def("_conv_winograd4_set_chunk_bytes", [](int64_t bytes) { lamina::conv_winograd4_set_chunk_bytes(bytes); },
        py::arg("bytes"), "Tuning hook: the Winograd F(4x4) job's transformed-input budget (<= 0: default).");
  m.def("_conv_winograd4_set_dw_chunk_bytes", [](int64_t bytes) { lamina::conv_winograd4_set_dw_chunk_bytes(bytes); },
        py::arg("bytes"), "Tuning hook: the Winograd F(4x4) weight gradient job's transformed-input budget (<= 0: default).");
}
