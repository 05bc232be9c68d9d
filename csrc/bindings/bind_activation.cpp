// _C.act_forward / act_backward / gelu_* / bias_add_* / bias_grad_* (rows, channels, split): numpy in,
// numpy out-parameters.
#include <string>

#include "activation.h"
#include "bind_enums.h"
#include "common.h"

namespace py = pybind11;
using namespace lamina_py;

namespace {

// Elementwise kernels may write over an input element by element (same buffer), never a
// partially overlapping one.
lamina::Activation parse_kind(const std::string& s) {
  std::string all;
  for (int k = 0; k < lamina::kActivationCount; ++k) {
    if (s == lamina::kActivationNames[k]) return static_cast<lamina::Activation>(k);
    all += (k ? ", " : "") + std::string(lamina::kActivationNames[k]);
  }
  value_error("kind: expected one of ", all, "; got '", s, "'");
}

// (rows, F) view of an array of shape (..., F); ndim >= 1.
void rows_cols(const py::array& a, const char* name, int64_t& rows, int64_t& cols) {
  if (a.ndim() < 1) value_error(name, ": expected an array with at least 1 dimension, got a 0-D array");
  cols = a.shape(a.ndim() - 1);
  rows = 1;
  for (py::ssize_t i = 0; i + 1 < a.ndim(); ++i) rows *= a.shape(i);
}

// (N, C, S) view of an array of shape (N, C, *spatial); ndim >= 2.
void ncs(const py::array& a, const char* name, int64_t& N, int64_t& C, int64_t& S) {
  if (a.ndim() < 2) value_error(name, ": expected shape (N, C, *spatial) with ndim >= 2, got ", shape_str(a));
  N = a.shape(0);
  C = a.shape(1);
  S = 1;
  for (py::ssize_t i = 2; i < a.ndim(); ++i) S *= a.shape(i);
}

}  // namespace

void bind_activation(py::module_& m) {
  bind_enum<lamina::Activation>(m, "Activation", lamina::kActivationCount, &lamina::activation_name,
                                "Activation kinds, as csrc/activation.h lists them (the graph's act attributes).");
  m.def(
      "act_forward",
      [](const std::string& kind, const py::array& x, const py::array& y, double negative_slope) {
        const lamina::Activation k = parse_kind(kind);
        dispatch_float(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const auto [xp, yp] = elementwise_io<T>(x, y);
          const int64_t n = static_cast<int64_t>(x.size());
          py::gil_scoped_release nogil;
          lamina::act_forward<T>(k, n, xp, yp, static_cast<T>(negative_slope));
        });
      },
      py::arg("kind"), py::arg("x"), py::arg("y").noconvert(), py::arg("negative_slope") = 0.01,
      R"doc(y = f(x) elementwise; y may be x itself (in place).

kind: identity, relu, leaky_relu, softplus (beta=1, threshold=20), sigmoid, tanh, step (x > 0).

>>> import numpy as np; from lamina import _C
>>> x = np.array([-1.0, 0.0, 2.0]); y = np.empty_like(x)
>>> _C.act_forward("relu", x, y); y.tolist()
[0.0, 0.0, 2.0]
)doc");

  m.def(
      "act_backward",
      [](const std::string& kind, const py::object& x, const py::object& y, const py::array& dy,
         const py::array& dx, double negative_slope) {
        const lamina::Activation k = parse_kind(kind);
        const bool reads_y = lamina::act_backward_reads_y(k);
        const char* vname = reads_y ? "y" : "x";
        const py::object& vobj = reads_y ? y : x;
        if (vobj.is_none())
          value_error(vname, ": ", kind, " backward reads the ", reads_y ? "forward output y" : "input x",
                      ", got None");
        if (!py::isinstance<py::array>(vobj))
          type_error(vname, ": expected a numpy array, got ", std::string(py::str(py::type::of(vobj))));
        const py::array v = py::reinterpret_borrow<py::array>(vobj);
        dispatch_float(v, vname, [&](auto tag) {
          using T = decltype(tag);
          const T* vp = data_of<T>(v, vname);
          check_same_dtype(v, vname, dy, "dy");
          check_same_dtype(v, vname, dx, "dx");
          const T* dyp = data_of<T>(dy, "dy");
          T* dxp = data_of<T>(dx, "dx", true);
          check_shape(dy, "dy", shape_of(v));
          check_shape(dx, "dx", shape_of(v));
          check_same_or_disjoint(dx, "dx", dy, "dy");
          check_same_or_disjoint(dx, "dx", v, vname);
          const int64_t n = static_cast<int64_t>(v.size());
          py::gil_scoped_release nogil;
          lamina::act_backward<T>(k, n, vp, dyp, dxp, static_cast<T>(negative_slope));
        });
      },
      py::arg("kind"), py::arg("x"), py::arg("y"), py::arg("dy"), py::arg("dx").noconvert(),
      py::arg("negative_slope") = 0.01,
      R"doc(dx = dy * f'(.) elementwise. sigmoid and tanh read y (the forward output), the others
read x; the one not read may be None. dx may be dy (or the array read) itself.
relu'(0) = 0, step' = 0 everywhere, leaky_relu'(0) = negative_slope.

>>> import numpy as np; from lamina import _C
>>> x = np.array([-1.0, 0.0, 2.0]); dx = np.empty_like(x)
>>> _C.act_backward("relu", x, None, np.ones(3), dx); dx.tolist()
[0.0, 0.0, 1.0]
)doc");

  m.def(
      "bias_add_rows",
      [](const py::array& y, const py::array& b) {
        int64_t N, F;
        rows_cols(y, "y", N, F);
        dispatch_float(y, "y", [&](auto tag) {
          using T = decltype(tag);
          T* yp = data_of<T>(y, "y", true);
          check_same_dtype(y, "y", b, "b");
          const T* bp = data_of<T>(b, "b");
          check_shape(b, "b", {F});
          check_no_alias(y, "y", b, "b");
          py::gil_scoped_release nogil;
          lamina::bias_add_rows<T>(N, F, yp, bp);
        });
      },
      py::arg("y").noconvert(), py::arg("b"),
      R"doc(In place: y[..., j] += b[j] for y of shape (..., F), b of shape (F,).

>>> import numpy as np; from lamina import _C
>>> y = np.zeros((2, 3)); _C.bias_add_rows(y, np.arange(3.0)); y[1].tolist()
[0.0, 1.0, 2.0]
)doc");

  m.def(
      "bias_add_channels",
      [](const py::array& y, const py::array& b) {
        int64_t N, C, S;
        ncs(y, "y", N, C, S);
        dispatch_float(y, "y", [&](auto tag) {
          using T = decltype(tag);
          T* yp = data_of<T>(y, "y", true);
          check_same_dtype(y, "y", b, "b");
          const T* bp = data_of<T>(b, "b");
          check_shape(b, "b", {C});
          check_no_alias(y, "y", b, "b");
          py::gil_scoped_release nogil;
          lamina::bias_add_channels<T>(N, C, S, yp, bp);
        });
      },
      py::arg("y").noconvert(), py::arg("b"),
      R"doc(In place: y[n, c, ...] += b[c] for y of shape (N, C, *spatial), b of shape (C,).

>>> import numpy as np; from lamina import _C
>>> y = np.zeros((1, 2, 2)); _C.bias_add_channels(y, np.array([1.0, 2.0])); y.tolist()
[[[1.0, 1.0], [2.0, 2.0]]]
)doc");

  m.def(
      "bias_grad_rows",
      [](const py::array& dy, const py::array& db) {
        int64_t N, F;
        rows_cols(dy, "dy", N, F);
        dispatch_float(dy, "dy", [&](auto tag) {
          using T = decltype(tag);
          const T* dyp = data_of<T>(dy, "dy");
          check_same_dtype(dy, "dy", db, "db");
          T* dbp = data_of<T>(db, "db", true);
          check_shape(db, "db", {F});
          check_no_alias(db, "db", dy, "dy");
          py::gil_scoped_release nogil;
          lamina::bias_grad_rows<T>(N, F, dyp, dbp);
        });
      },
      py::arg("dy"), py::arg("db").noconvert(),
      R"doc(db[j] = sum of dy[..., j] over all leading axes (db is overwritten).

>>> import numpy as np; from lamina import _C
>>> db = np.empty(2); _C.bias_grad_rows(np.ones((3, 2)), db); db.tolist()
[3.0, 3.0]
)doc");

  m.def(
      "bias_grad_channels",
      [](const py::array& dy, const py::array& db) {
        int64_t N, C, S;
        ncs(dy, "dy", N, C, S);
        dispatch_float(dy, "dy", [&](auto tag) {
          using T = decltype(tag);
          const T* dyp = data_of<T>(dy, "dy");
          check_same_dtype(dy, "dy", db, "db");
          T* dbp = data_of<T>(db, "db", true);
          check_shape(db, "db", {C});
          check_no_alias(db, "db", dy, "dy");
          py::gil_scoped_release nogil;
          lamina::bias_grad_channels<T>(N, C, S, dyp, dbp);
        });
      },
      py::arg("dy"), py::arg("db").noconvert(),
      R"doc(db[c] = sum of dy[n, c, ...] over n and the spatial axes (db is overwritten).

>>> import numpy as np; from lamina import _C
>>> db = np.empty(2); _C.bias_grad_channels(np.ones((2, 2, 3)), db); db.tolist()
[6.0, 6.0]
)doc");
  m.def(
      "bias_grad_split",
      [](const py::array& dy, const py::array& ds, int64_t outer, int64_t mid, int64_t inner,
         const py::object& x, double alpha) {
        if (outer < 0 || mid < 0 || inner < 0)
          value_error("split: expected non-negative (outer, mid, inner), got (", outer, ", ", mid, ", ", inner, ")");
        if (static_cast<int64_t>(dy.size()) != outer * mid * inner)
          value_error("dy: expected ", outer * mid * inner, " elements for split (", outer, ", ", mid, ", ", inner,
                      "), got ", dy.size());
        if (static_cast<int64_t>(ds.size()) != mid)
          value_error("ds: expected ", mid, " elements, got ", ds.size());
        dispatch_float(dy, "dy", [&](auto tag) {
          using T = decltype(tag);
          const T* dyp = data_of<T>(dy, "dy");
          check_same_dtype(dy, "dy", ds, "ds");
          T* dsp = data_of<T>(ds, "ds", true);
          check_no_alias(ds, "ds", dy, "dy");
          const T* xp = nullptr;
          py::array xa;
          if (!x.is_none()) {
            xa = x.cast<py::array>();
            check_same_dtype(dy, "dy", xa, "x");
            check_shape(xa, "x", shape_of(dy));
            xp = data_of<T>(xa, "x");
            check_no_alias(ds, "ds", xa, "x");
          }
          py::gil_scoped_release nogil;
          lamina::bias_grad_split<T>(outer, mid, inner, alpha, dyp, xp, dsp);
        });
      },
      py::arg("dy"), py::arg("ds").noconvert(), py::arg("outer"), py::arg("mid"), py::arg("inner"),
      py::arg("x") = py::none(), py::arg("alpha") = 1.0,
      R"doc(ds[m] = alpha * sum of dy[o, m, i] (times x[o, m, i] if given) over o and i, for dy viewed
as (outer, mid, inner); products rounded to dy's dtype, sums in double (ds is overwritten). The
gradient of an operand broadcast over the other dims, shared by eager autodiff and the executor.

>>> import numpy as np; from lamina import _C
>>> ds = np.empty(2); _C.bias_grad_split(np.ones((3, 2, 4)), ds, 3, 2, 4); ds.tolist()
[12.0, 12.0]
)doc");

  m.def(
      "gelu_forward",
      [](const py::array& x, const py::array& y) {
        dispatch_float(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const auto [xp, yp] = elementwise_io<T>(x, y);
          const int64_t n = static_cast<int64_t>(x.size());
          py::gil_scoped_release nogil;
          lamina::gelu_forward<T>(n, xp, yp);
        });
      },
      py::arg("x"), py::arg("y").noconvert(),
      R"doc(Exact GELU into y: y = x * (1 + erf(x / sqrt(2))) / 2.

>>> import numpy as np; from lamina import _C
>>> y = np.empty(2); _C.gelu_forward(np.array([0.0, 1.0]), y); [round(v, 6) for v in y]
[0.0, 0.841345]
)doc");

  m.def(
      "gelu_backward",
      [](const py::array& x, const py::array& dy, const py::array& dx) {
        dispatch_float(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const T* xp = data_of<T>(x, "x");
          check_same_dtype(x, "x", dy, "dy");
          check_same_dtype(x, "x", dx, "dx");
          const T* dyp = data_of<T>(dy, "dy");
          T* dxp = data_of<T>(dx, "dx", true);
          check_shape(dy, "dy", shape_of(x));
          check_shape(dx, "dx", shape_of(x));
          check_same_or_disjoint(dx, "dx", x, "x");
          check_same_or_disjoint(dx, "dx", dy, "dy");
          const int64_t n = static_cast<int64_t>(x.size());
          py::gil_scoped_release nogil;
          lamina::gelu_backward<T>(n, xp, dyp, dxp);
        });
      },
      py::arg("x"), py::arg("dy"), py::arg("dx").noconvert(),
      R"doc(Exact GELU's gradient into dx: dx = dy * (Phi(x) + x * phi(x)).

>>> import numpy as np; from lamina import _C
>>> dx = np.empty(1); _C.gelu_backward(np.array([0.0]), np.array([1.0]), dx); dx.tolist()
[0.5]
)doc");
}
