// _C.batch_norm_* / layer_norm_* / group_norm_* / dropout: the norm family's kernels over numpy
// buffers. Outputs are caller-allocated; every array is checked (dtype, shape, contiguity,
// writeability, overlap) before the GIL is released.
#include <cstdint>
#include <string>

#include "common.h"
#include "norm.h"

namespace py = pybind11;
using namespace lamina_py;

namespace {

// An optional array argument (None -> nullptr) of the given shape and x's dtype.
template <class T>
T* optional_of(const py::object& obj, const char* name, const std::vector<int64_t>& shape, bool writeable,
               const py::array& x) {
  if (obj.is_none()) return nullptr;
  if (!py::isinstance<py::array>(obj))
    type_error(name, ": expected a numpy array or None, got ", std::string(py::str(py::type::of(obj))));
  const py::array a = py::reinterpret_borrow<py::array>(obj);
  check_same_dtype(x, "x", a, name);
  check_shape(a, name, shape);
  T* p = data_of<T>(a, name, writeable);
  if (writeable) check_no_alias(a, name, x, "x");
  return p;
}

template <class T>
T* required_of(const py::array& a, const char* name, const std::vector<int64_t>& shape, bool writeable,
               const py::array& x) {
  return optional_of<T>(py::reinterpret_borrow<py::object>(a), name, shape, writeable, x);
}

// (N, C, S) of an input with at least 2 dims: S is the product of the dims after C.
struct NCS {
  int64_t N, C, S;
};
NCS ncs_of(const py::array& x, const char* what) {
  if (x.ndim() < 2)
    value_error("x: ", what, " expects (N, C, ...) input with at least 2 dims, got shape ", shape_str(x));
  int64_t s = 1;
  for (py::ssize_t i = 2; i < x.ndim(); ++i) s *= x.shape(i);
  return {static_cast<int64_t>(x.shape(0)), static_cast<int64_t>(x.shape(1)), s};
}

void check_eps(double eps) {
  if (!(eps >= 0)) value_error("eps: expected a non-negative number, got ", eps);
}

}  // namespace

void bind_norm(py::module_& m) {
  m.def(
      "batch_norm_forward",
      [](const py::array& x, const py::object& weight, const py::object& bias, const py::object& running_mean,
         const py::object& running_var, bool training, double momentum, double eps, bool relu, const py::array& y,
         const py::array& save_mean, const py::array& save_invstd) {
        check_eps(eps);
        if (!(momentum >= 0 && momentum <= 1)) value_error("momentum: expected a factor in [0, 1], got ", momentum);
        const NCS d = ncs_of(x, "batch_norm");
        if (running_mean.is_none() != running_var.is_none())
          value_error("running_var: running_mean and running_var must both be arrays or both None");
        if (!training && running_mean.is_none())
          value_error("running_mean: eval mode (training=False) needs the running statistics, got None");
        dispatch_float(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const T* xp = data_of<T>(x, "x");
          const T* wp = optional_of<T>(weight, "weight", {d.C}, false, x);
          const T* bp = optional_of<T>(bias, "bias", {d.C}, false, x);
          T* rm = optional_of<T>(running_mean, "running_mean", {d.C}, training, x);
          T* rv = optional_of<T>(running_var, "running_var", {d.C}, training, x);
          T* yp = required_of<T>(y, "y", shape_of(x), true, x);
          T* sm = required_of<T>(save_mean, "save_mean", {d.C}, true, x);
          T* si = required_of<T>(save_invstd, "save_invstd", {d.C}, true, x);
          py::gil_scoped_release nogil;
          lamina::batch_norm_forward<T>(d.N, d.C, d.S, xp, wp, bp, training, rm, rv, momentum, eps, relu, yp, sm, si);
        });
      },
      py::arg("x"), py::arg("weight"), py::arg("bias"), py::arg("running_mean"), py::arg("running_var"),
      py::arg("training"), py::arg("momentum"), py::arg("eps"), py::arg("relu"), py::arg("y"), py::arg("save_mean"),
      py::arg("save_invstd"),
      R"doc(BatchNorm forward over x (N, C, ...) into y; training updates the running stats in place with
`momentum` (the averaging factor). save_mean / save_invstd (C,) receive the statistics used.

>>> import numpy as np; from lamina import _C
>>> x = np.array([[1.0], [3.0]]); y = np.empty_like(x); m = np.empty(1); s = np.empty(1)
>>> _C.batch_norm_forward(x, None, None, None, None, True, 0.1, 0.0, False, y, m, s); y.ravel().tolist()
[-1.0, 1.0]
)doc");

  m.def(
      "batch_norm_backward",
      [](const py::array& x, const py::array& dy, const py::object& y, const py::object& weight,
         const py::array& save_mean, const py::array& save_invstd, bool training, const py::object& dx,
         const py::object& dweight, const py::object& dbias) {
        const NCS d = ncs_of(x, "batch_norm");
        dispatch_float(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const T* xp = data_of<T>(x, "x");
          const T* dyp = required_of<T>(dy, "dy", shape_of(x), false, x);
          const T* yp = optional_of<T>(y, "y", shape_of(x), false, x);
          const T* wp = optional_of<T>(weight, "weight", {d.C}, false, x);
          const T* sm = required_of<T>(save_mean, "save_mean", {d.C}, false, x);
          const T* si = required_of<T>(save_invstd, "save_invstd", {d.C}, false, x);
          T* dxp = optional_of<T>(dx, "dx", shape_of(x), true, x);
          if (dxp) {
            check_no_alias(py::reinterpret_borrow<py::array>(dx), "dx", dy, "dy");
            if (!y.is_none()) check_no_alias(py::reinterpret_borrow<py::array>(dx), "dx", py::reinterpret_borrow<py::array>(y), "y");
          }
          T* dwp = optional_of<T>(dweight, "dweight", {d.C}, true, x);
          T* dbp = optional_of<T>(dbias, "dbias", {d.C}, true, x);
          py::gil_scoped_release nogil;
          lamina::batch_norm_backward<T>(d.N, d.C, d.S, xp, dyp, yp, wp, sm, si, training, dxp, dwp, dbp);
        });
      },
      py::arg("x"), py::arg("dy"), py::arg("y"), py::arg("weight"), py::arg("save_mean"), py::arg("save_invstd"),
      py::arg("training"), py::arg("dx"), py::arg("dweight"), py::arg("dbias"),
      "The whole BatchNorm backward in one kernel (y: the forward output when it fused a ReLU, else None).");

  m.def(
      "layer_norm_forward",
      [](const py::array& x, int64_t K, const py::object& weight, const py::object& bias, double eps,
         const py::array& y, const py::array& mean, const py::array& rstd) {
        check_eps(eps);
        const int64_t total = static_cast<int64_t>(x.size());
        if (K <= 0 || total % K != 0)
          value_error("normalized_shape: expected a size K > 0 dividing the input's ", total, " elements, got K=", K);
        const int64_t R = total / K;
        dispatch_float(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const T* xp = data_of<T>(x, "x");
          const T* wp = optional_of<T>(weight, "weight", {K}, false, x);
          const T* bp = optional_of<T>(bias, "bias", {K}, false, x);
          T* yp = required_of<T>(y, "y", shape_of(x), true, x);
          T* mp = required_of<T>(mean, "mean", {R}, true, x);
          T* rp = required_of<T>(rstd, "rstd", {R}, true, x);
          py::gil_scoped_release nogil;
          lamina::layer_norm_forward<T>(R, K, xp, wp, bp, eps, yp, mp, rp);
        });
      },
      py::arg("x"), py::arg("K"), py::arg("weight"), py::arg("bias"), py::arg("eps"), py::arg("y"), py::arg("mean"),
      py::arg("rstd"), "LayerNorm forward over the last K elements of each row of x; mean / rstd are (R,).");

  m.def(
      "layer_norm_backward",
      [](const py::array& x, const py::array& dy, int64_t K, const py::object& weight, const py::array& mean,
         const py::array& rstd, const py::object& dx, const py::object& dweight, const py::object& dbias) {
        const int64_t total = static_cast<int64_t>(x.size());
        if (K <= 0 || total % K != 0)
          value_error("normalized_shape: expected a size K > 0 dividing the input's ", total, " elements, got K=", K);
        const int64_t R = total / K;
        dispatch_float(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const T* xp = data_of<T>(x, "x");
          const T* dyp = required_of<T>(dy, "dy", shape_of(x), false, x);
          const T* wp = optional_of<T>(weight, "weight", {K}, false, x);
          const T* mp = required_of<T>(mean, "mean", {R}, false, x);
          const T* rp = required_of<T>(rstd, "rstd", {R}, false, x);
          T* dxp = optional_of<T>(dx, "dx", shape_of(x), true, x);
          if (dxp) check_no_alias(py::reinterpret_borrow<py::array>(dx), "dx", dy, "dy");
          T* dwp = optional_of<T>(dweight, "dweight", {K}, true, x);
          T* dbp = optional_of<T>(dbias, "dbias", {K}, true, x);
          py::gil_scoped_release nogil;
          lamina::layer_norm_backward<T>(R, K, xp, dyp, wp, mp, rp, dxp, dwp, dbp);
        });
      },
      py::arg("x"), py::arg("dy"), py::arg("K"), py::arg("weight"), py::arg("mean"), py::arg("rstd"), py::arg("dx"),
      py::arg("dweight"), py::arg("dbias"), "LayerNorm backward (dx, dweight, dbias may be None).");

  m.def(
      "group_norm_forward",
      [](const py::array& x, int64_t G, const py::object& weight, const py::object& bias, double eps,
         const py::array& y, const py::array& mean, const py::array& rstd) {
        check_eps(eps);
        const NCS d = ncs_of(x, "group_norm");
        if (G <= 0 || d.C % G != 0)
          value_error("num_groups: expected a positive divisor of the ", d.C, " channels, got ", G);
        dispatch_float(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const T* xp = data_of<T>(x, "x");
          const T* wp = optional_of<T>(weight, "weight", {d.C}, false, x);
          const T* bp = optional_of<T>(bias, "bias", {d.C}, false, x);
          T* yp = required_of<T>(y, "y", shape_of(x), true, x);
          T* mp = required_of<T>(mean, "mean", {d.N, G}, true, x);
          T* rp = required_of<T>(rstd, "rstd", {d.N, G}, true, x);
          py::gil_scoped_release nogil;
          lamina::group_norm_forward<T>(d.N, d.C, d.S, G, xp, wp, bp, eps, yp, mp, rp);
        });
      },
      py::arg("x"), py::arg("G"), py::arg("weight"), py::arg("bias"), py::arg("eps"), py::arg("y"), py::arg("mean"),
      py::arg("rstd"), "GroupNorm forward over x (N, C, ...) with G groups; mean / rstd are (N, G).");

  m.def(
      "group_norm_backward",
      [](const py::array& x, const py::array& dy, int64_t G, const py::object& weight, const py::array& mean,
         const py::array& rstd, const py::object& dx, const py::object& dweight, const py::object& dbias) {
        const NCS d = ncs_of(x, "group_norm");
        if (G <= 0 || d.C % G != 0)
          value_error("num_groups: expected a positive divisor of the ", d.C, " channels, got ", G);
        dispatch_float(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const T* xp = data_of<T>(x, "x");
          const T* dyp = required_of<T>(dy, "dy", shape_of(x), false, x);
          const T* wp = optional_of<T>(weight, "weight", {d.C}, false, x);
          const T* mp = required_of<T>(mean, "mean", {d.N, G}, false, x);
          const T* rp = required_of<T>(rstd, "rstd", {d.N, G}, false, x);
          T* dxp = optional_of<T>(dx, "dx", shape_of(x), true, x);
          if (dxp) check_no_alias(py::reinterpret_borrow<py::array>(dx), "dx", dy, "dy");
          T* dwp = optional_of<T>(dweight, "dweight", {d.C}, true, x);
          T* dbp = optional_of<T>(dbias, "dbias", {d.C}, true, x);
          py::gil_scoped_release nogil;
          lamina::group_norm_backward<T>(d.N, d.C, d.S, G, xp, dyp, wp, mp, rp, dxp, dwp, dbp);
        });
      },
      py::arg("x"), py::arg("dy"), py::arg("G"), py::arg("weight"), py::arg("mean"), py::arg("rstd"), py::arg("dx"),
      py::arg("dweight"), py::arg("dbias"), "GroupNorm backward (dx, dweight, dbias may be None).");

  m.def(
      "dropout",
      [](const py::array& x, const py::array& y, const py::array& keep, double p, int64_t unit) {
        if (!(p >= 0 && p <= 1)) value_error("p: dropout probability must be in [0, 1], got ", p);
        const int64_t total = static_cast<int64_t>(x.size());
        if (unit <= 0 || total % unit != 0)
          value_error("unit: expected a positive divisor of the input's ", total, " elements, got ", unit);
        if (keep.dtype().kind() != 'b' && !(keep.dtype().kind() == 'u' && keep.itemsize() == 1))
          type_error("keep: expected a bool or uint8 array, got dtype ", std::string(py::str(keep.dtype())));
        if (!(keep.flags() & py::array::c_style))
          value_error("keep: expected a C-contiguous array");
        if (static_cast<int64_t>(keep.size()) != total / unit)
          value_error("keep: expected ", total / unit, " units (", total, " elements / unit ", unit, "), got ",
                      static_cast<int64_t>(keep.size()));
        const auto* kp = static_cast<const uint8_t*>(keep.data());
        dispatch_float(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const auto [xp, yp] = elementwise_io<T>(x, y);
          py::gil_scoped_release nogil;
          lamina::dropout_apply<T>(total / unit, unit, xp, yp, kp, p);
        });
      },
      py::arg("x"), py::arg("y"), py::arg("keep"), py::arg("p"), py::arg("unit"),
      R"doc(y = x * noise: unit r (`unit` consecutive elements; 1 for dropout, H*W for dropout2d) is
multiplied by 1 / (1 - p) where keep[r], else by 0. The same call on dy with the same keep mask is
the backward.

>>> import numpy as np; from lamina import _C
>>> y = np.empty(4); _C.dropout(np.ones(4), y, np.array([1, 0, 1, 1], np.uint8), 0.5, 1); y.tolist()
[2.0, 0.0, 2.0, 2.0]
)doc");
}
