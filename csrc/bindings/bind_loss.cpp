// _C.softmax_* / log_softmax_* / cross_entropy_* / mse_* / bce_with_logits_*.
#include <string>
#include <type_traits>
#include <utility>

#include "common.h"
#include "loss.h"

namespace py = pybind11;
using namespace lamina_py;

namespace {

// Checks a 2-D input x and an output of the same shape/dtype; returns (N, C).
template <class T>
std::pair<int64_t, int64_t> rows_and_out(const py::array& x, const char* xn, const py::array& y, const char* yn) {
  check_ndim(x, xn, 2);
  check_same_dtype(x, xn, y, yn);
  check_shape(y, yn, shape_of(x));
  data_of<T>(y, yn, true);
  return {x.shape(0), x.shape(1)};
}

const int64_t* target_of(const py::array& target, int64_t N) {
  if (!target.dtype().is(py::dtype::of<int64_t>()))
    type_error("target: expected dtype int64 (class indices), got ", dtype_of(target));
  check_shape(target, "target", {N});
  return data_of<int64_t>(target, "target");
}

[[noreturn]] void bad_target(const py::array& target, int64_t row, int64_t C) {
  const int64_t v = static_cast<const int64_t*>(target.data())[row];
  value_error("target: class index ", v, " out of range [0, ", C, ") at position ", row);
}

// softmax_backward and log_softmax_backward take the same (y, dy, dx) rows and checks.
template <class KernelF, class KernelD>
auto rowwise_backward(KernelF kernel_f32, KernelD kernel_f64) {
  return [=](const py::array& y, const py::array& dy, const py::array& dx) {
    dispatch_float(y, "y", [&](auto tag) {
      using T = decltype(tag);
      const T* yp = data_of<T>(y, "y");
      auto [N, C] = rows_and_out<T>(y, "y", dx, "dx");
      check_same_dtype(y, "y", dy, "dy");
      check_shape(dy, "dy", shape_of(y));
      const T* dyp = data_of<T>(dy, "dy");
      check_same_or_disjoint(dx, "dx", y, "y");
      check_same_or_disjoint(dx, "dx", dy, "dy");
      T* dxp = data_of<T>(dx, "dx", true);
      py::gil_scoped_release nogil;
      if constexpr (std::is_same_v<T, float>) kernel_f32(N, C, yp, dyp, dxp);
      else kernel_f64(N, C, yp, dyp, dxp);
    });
  };
}

// mse and bce_with_logits: elementwise losses over same-shape (x, t).
template <class KernelF, class KernelD>
auto pointwise_loss_forward(KernelF kernel_f32, KernelD kernel_f64) {
  return [=](const py::array& x, const py::array& t) {
    return dispatch_float(x, "x", [&](auto tag) {
      using T = decltype(tag);
      const T* xp = data_of<T>(x, "x");
      check_same_dtype(x, "x", t, "t");
      check_shape(t, "t", shape_of(x));
      const T* tp = data_of<T>(t, "t");
      const int64_t n = static_cast<int64_t>(x.size());
      py::gil_scoped_release nogil;
      if constexpr (std::is_same_v<T, float>) return kernel_f32(n, xp, tp);
      else return kernel_f64(n, xp, tp);
    });
  };
}

// dx = scale * d(loss)/dx for the losses above; dx may be x or t.
template <class KernelF, class KernelD>
auto pointwise_loss_backward(KernelF kernel_f32, KernelD kernel_f64) {
  return [=](const py::array& x, const py::array& t, double scale, const py::array& dx) {
    dispatch_float(x, "x", [&](auto tag) {
      using T = decltype(tag);
      const T* xp = data_of<T>(x, "x");
      check_same_dtype(x, "x", t, "t");
      check_shape(t, "t", shape_of(x));
      const T* tp = data_of<T>(t, "t");
      check_same_dtype(x, "x", dx, "dx");
      check_shape(dx, "dx", shape_of(x));
      T* dxp = data_of<T>(dx, "dx", true);
      check_same_or_disjoint(dx, "dx", x, "x");
      check_same_or_disjoint(dx, "dx", t, "t");
      const int64_t n = static_cast<int64_t>(x.size());
      py::gil_scoped_release nogil;
      if constexpr (std::is_same_v<T, float>) kernel_f32(n, xp, tp, static_cast<T>(scale), dxp);
      else kernel_f64(n, xp, tp, static_cast<T>(scale), dxp);
    });
  };
}

}  // namespace

void bind_loss(py::module_& m) {
  m.def(
      "softmax_forward",
      [](const py::array& x, const py::array& y) {
        dispatch_float(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const T* xp = data_of<T>(x, "x");
          auto [N, C] = rows_and_out<T>(x, "x", y, "y");
          check_same_or_disjoint(y, "y", x, "x");
          T* yp = data_of<T>(y, "y", true);
          py::gil_scoped_release nogil;
          lamina::softmax_forward<T>(N, C, xp, yp);
        });
      },
      py::arg("x"), py::arg("y").noconvert(),
      R"doc(y = softmax(x) along the last axis of a 2-D x (rows, C); y may be x (in place).

>>> import numpy as np; from lamina import _C
>>> y = np.empty((1, 2)); _C.softmax_forward(np.array([[0.0, 0.0]]), y); y.tolist()
[[0.5, 0.5]]
)doc");

  m.def(
      "softmax_backward", rowwise_backward(&lamina::softmax_backward<float>, &lamina::softmax_backward<double>),
      py::arg("y"), py::arg("dy"), py::arg("dx").noconvert(),
      "dx = y * (dy - sum(dy * y, axis=1, keepdims=True)); dx may be dy or y itself.");

  m.def(
      "log_softmax_forward",
      [](const py::array& x, const py::array& y) {
        dispatch_float(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const T* xp = data_of<T>(x, "x");
          auto [N, C] = rows_and_out<T>(x, "x", y, "y");
          check_no_alias(y, "y", x, "x");
          T* yp = data_of<T>(y, "y", true);
          py::gil_scoped_release nogil;
          lamina::log_softmax_forward<T>(N, C, xp, yp);
        });
      },
      py::arg("x"), py::arg("y").noconvert(),
      R"doc(y = log_softmax(x) along the last axis of a 2-D x; y must not overlap x.

>>> import numpy as np; from lamina import _C
>>> y = np.empty((1, 2)); _C.log_softmax_forward(np.array([[0.0, 0.0]]), y); round(y[0, 0], 6)
-0.693147
)doc");

  m.def(
      "log_softmax_backward", rowwise_backward(&lamina::log_softmax_backward<float>, &lamina::log_softmax_backward<double>),
      py::arg("y"), py::arg("dy"), py::arg("dx").noconvert(),
      "dx = dy - exp(y) * sum(dy, axis=1, keepdims=True); dx may be dy or y itself.");

  m.def("loss_scale", &lamina::loss_scale, py::arg("mean"), py::arg("count"),
        R"doc(The factor a summed loss is multiplied by: 1/count for a mean (count > 0), else 1.

>>> from lamina import _C
>>> _C.loss_scale(True, 4), _C.loss_scale(False, 4), _C.loss_scale(True, 0)
(0.25, 1.0, 1.0)
)doc");
  m.def("reduced_loss", &lamina::reduced_loss, py::arg("sum"), py::arg("mean"), py::arg("count"),
        R"doc(The loss value from its sum: sum * loss_scale(mean, count); NaN for a mean over nothing.

>>> from lamina import _C
>>> _C.reduced_loss(3.0, True, 2), _C.reduced_loss(3.0, False, 2)
(1.5, 3.0)
)doc");

  m.def(
      "cross_entropy_forward",
      [](const py::array& logits, const py::array& target, const py::array& probs, int64_t ignore_index,
         const py::object& losses) {
        return dispatch_float(logits, "logits", [&](auto tag) -> py::tuple {
          using T = decltype(tag);
          const T* xp = data_of<T>(logits, "logits");
          auto [N, C] = rows_and_out<T>(logits, "logits", probs, "probs");
          check_same_or_disjoint(probs, "probs", logits, "logits");
          T* pp = data_of<T>(probs, "probs", true);
          const int64_t* tp = target_of(target, N);
          T* lp = nullptr;
          if (!losses.is_none()) {
            if (!py::isinstance<py::array>(losses))
              type_error("losses: expected a numpy array or None, got ", std::string(py::str(py::type::of(losses))));
            const py::array la = py::reinterpret_borrow<py::array>(losses);
            check_same_dtype(logits, "logits", la, "losses");
            check_shape(la, "losses", {N});
            lp = data_of<T>(la, "losses", true);
            check_no_alias(la, "losses", logits, "logits");
            check_no_alias(la, "losses", probs, "probs");
          }
          double sum = 0.0;
          int64_t count = 0, bad;
          {
            py::gil_scoped_release nogil;
            bad = lamina::cross_entropy_forward<T>(N, C, xp, tp, pp, ignore_index, lp, &sum, &count);
          }
          if (bad >= 0) bad_target(target, bad, C);
          return py::make_tuple(sum, count);
        });
      },
      py::arg("logits"), py::arg("target"), py::arg("probs").noconvert(), py::arg("ignore_index") = -100,
      py::arg("losses") = py::none(),
      R"doc(Softmax cross-entropy of logits (N, C) against int64 target (N,).

Writes probs = softmax(logits) (may be logits itself) and, if given, per-sample losses (N,)
(0 where target == ignore_index); returns (loss_sum, count) over the rows not ignored, so
the mean loss is loss_sum / count. A target outside [0, C) raises ValueError.

>>> import numpy as np; from lamina import _C
>>> p = np.empty((1, 2)); s, n = _C.cross_entropy_forward(np.zeros((1, 2)), np.array([1]), p)
>>> round(s, 6), n
(0.693147, 1)
)doc");

  m.def(
      "cross_entropy_backward",
      [](const py::array& probs, const py::array& target, const py::array& dlogits, double scale,
         int64_t ignore_index) {
        dispatch_float(probs, "probs", [&](auto tag) {
          using T = decltype(tag);
          const T* pp = data_of<T>(probs, "probs");
          auto [N, C] = rows_and_out<T>(probs, "probs", dlogits, "dlogits");
          check_same_or_disjoint(dlogits, "dlogits", probs, "probs");
          T* dp = data_of<T>(dlogits, "dlogits", true);
          const int64_t* tp = target_of(target, N);
          int64_t bad;
          {
            py::gil_scoped_release nogil;
            bad = lamina::cross_entropy_backward<T>(N, C, pp, tp, static_cast<T>(scale), ignore_index, dp);
          }
          if (bad >= 0) bad_target(target, bad, C);
        });
      },
      py::arg("probs"), py::arg("target"), py::arg("dlogits").noconvert(), py::arg("scale"),
      py::arg("ignore_index") = -100,
      R"doc(dlogits = scale * (probs - onehot(target)), 0 on ignored rows; dlogits may be probs.
For a mean loss pass scale = dloss / count.)doc");

  m.def(
      "mse_forward", pointwise_loss_forward(&lamina::mse_forward<float>, &lamina::mse_forward<double>),
      py::arg("x"), py::arg("t"),
      R"doc(Sum of squared differences sum((x - t)**2) as a Python float (divide by x.size for the mean).

>>> import numpy as np; from lamina import _C
>>> _C.mse_forward(np.array([1.0, 2.0]), np.array([0.0, 0.0]))
5.0
)doc");

  m.def(
      "mse_backward", pointwise_loss_backward(&lamina::mse_backward<float>, &lamina::mse_backward<double>),
      py::arg("x"), py::arg("t"), py::arg("dy_scale"), py::arg("dx").noconvert(),
      "dx = dy_scale * (x - t) (for a mean of squares pass 2 * dloss / x.size); dx may be x or t.");

  m.def(
      "bce_with_logits_forward", pointwise_loss_forward(&lamina::bce_with_logits_forward<float>, &lamina::bce_with_logits_forward<double>),
      py::arg("x"), py::arg("t"),
      R"doc(Sum over elements of max(x, 0) - x*t + log(1 + exp(-|x|)) (stable BCE on logits).

>>> import numpy as np; from lamina import _C
>>> round(_C.bce_with_logits_forward(np.array([0.0]), np.array([1.0])), 6)
0.693147
)doc");

  m.def(
      "bce_with_logits_backward", pointwise_loss_backward(&lamina::bce_with_logits_backward<float>, &lamina::bce_with_logits_backward<double>),
      py::arg("x"), py::arg("t"), py::arg("scale"), py::arg("dx").noconvert(),
      "dx = scale * (sigmoid(x) - t); dx may be x or t.");
}
