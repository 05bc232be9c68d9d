// _C.sgd_step / _C.adam_step: in-place updates of a parameter's numpy buffer.
#include <string>
#include <utility>

#include "common.h"
#include "optim.h"

namespace py = pybind11;
using namespace lamina_py;

namespace {

// A state buffer: same dtype and shape as param, writeable, C-contiguous, not overlapping.
template <class T>
T* state_of(const py::array& param, const py::object& obj, const char* name) {
  if (!py::isinstance<py::array>(obj))
    type_error(name, ": expected a numpy array, got ", std::string(py::str(py::type::of(obj))));
  const py::array a = py::reinterpret_borrow<py::array>(obj);
  check_same_dtype(param, "param", a, name);
  check_shape(a, name, shape_of(param));
  T* p = data_of<T>(a, name, true);
  check_no_alias(a, name, param, "param");
  return p;
}

// param (written in place) and its gradient: same dtype and shape, not overlapping.
template <class T>
std::pair<T*, const T*> param_and_grad(const py::array& param, const py::array& grad) {
  T* pp = data_of<T>(param, "param", true);
  check_same_dtype(param, "param", grad, "grad");
  check_shape(grad, "grad", shape_of(param));
  const T* gp = data_of<T>(grad, "grad");
  check_no_alias(param, "param", grad, "grad");
  return {pp, gp};
}

}  // namespace

void bind_optim(py::module_& m) {
  m.def(
      "sgd_step",
      [](const py::array& param, const py::array& grad, const py::object& buf, double lr, double momentum,
         double dampening, double weight_decay, bool nesterov, bool first_step) {
        if (nesterov && (momentum <= 0 || dampening != 0))
          value_error("nesterov: requires momentum > 0 and dampening = 0, got momentum=", momentum,
                      ", dampening=", dampening);
        dispatch_float(param, "param", [&](auto tag) {
          using T = decltype(tag);
          const auto [pp, gp] = param_and_grad<T>(param, grad);
          T* bp = nullptr;
          if (momentum != 0) {
            if (buf.is_none()) value_error("buf: momentum=", momentum, " needs a momentum buffer, got None");
            bp = state_of<T>(param, buf, "buf");
            check_no_alias(py::reinterpret_borrow<py::array>(buf), "buf", grad, "grad");
          }
          const int64_t n = static_cast<int64_t>(param.size());
          py::gil_scoped_release nogil;
          lamina::sgd_step<T>(n, pp, gp, bp, lr, momentum, dampening, weight_decay, nesterov, first_step);
        });
      },
      py::arg("param").noconvert(), py::arg("grad"), py::arg("buf"), py::arg("lr"), py::arg("momentum"),
      py::arg("dampening"), py::arg("weight_decay"), py::arg("nesterov"), py::arg("first_step"),
      R"doc(One torch.optim.SGD update of param in place (buf: momentum buffer, None if momentum == 0;
first_step=True initialises buf to the gradient as PyTorch does).

>>> import numpy as np; from lamina import _C
>>> p = np.ones(2); _C.sgd_step(p, np.ones(2), None, 0.1, 0.0, 0.0, 0.0, False, True); p.tolist()
[0.9, 0.9]
)doc");

  m.def(
      "adam_step",
      [](const py::array& param, const py::array& grad, const py::object& exp_avg, const py::object& exp_avg_sq,
         const py::object& max_exp_avg_sq, int64_t step, double lr, double beta1, double beta2, double eps,
         double weight_decay, bool decoupled, bool amsgrad) {
        if (step < 1) value_error("step: expected the step count after this update (>= 1), got ", step);
        dispatch_float(param, "param", [&](auto tag) {
          using T = decltype(tag);
          const auto [pp, gp] = param_and_grad<T>(param, grad);
          T* mp = state_of<T>(param, exp_avg, "exp_avg");
          T* vp = state_of<T>(param, exp_avg_sq, "exp_avg_sq");
          // Every buffer the step writes must be disjoint from the others and from grad: a shared
          // buffer would silently mix the moments (a wrong update, no error).
          const auto m_arr = py::reinterpret_borrow<py::array>(exp_avg);
          const auto v_arr = py::reinterpret_borrow<py::array>(exp_avg_sq);
          check_no_alias(m_arr, "exp_avg", grad, "grad");
          check_no_alias(v_arr, "exp_avg_sq", grad, "grad");
          check_no_alias(v_arr, "exp_avg_sq", m_arr, "exp_avg");
          T* vmaxp = nullptr;
          if (amsgrad) {
            if (max_exp_avg_sq.is_none()) value_error("max_exp_avg_sq: amsgrad=True needs a buffer, got None");
            vmaxp = state_of<T>(param, max_exp_avg_sq, "max_exp_avg_sq");
            const auto vmax_arr = py::reinterpret_borrow<py::array>(max_exp_avg_sq);
            check_no_alias(vmax_arr, "max_exp_avg_sq", grad, "grad");
            check_no_alias(vmax_arr, "max_exp_avg_sq", m_arr, "exp_avg");
            check_no_alias(vmax_arr, "max_exp_avg_sq", v_arr, "exp_avg_sq");
          }
          const int64_t n = static_cast<int64_t>(param.size());
          py::gil_scoped_release nogil;
          lamina::adam_step<T>(n, pp, gp, mp, vp, vmaxp, step, lr, beta1, beta2, eps, weight_decay, decoupled,
                               amsgrad);
        });
      },
      py::arg("param").noconvert(), py::arg("grad"), py::arg("exp_avg"), py::arg("exp_avg_sq"),
      py::arg("max_exp_avg_sq"), py::arg("step"), py::arg("lr"), py::arg("beta1"), py::arg("beta2"),
      py::arg("eps"), py::arg("weight_decay"), py::arg("decoupled"), py::arg("amsgrad"),
      R"doc(One torch.optim.Adam (decoupled=False) / AdamW (decoupled=True) update in place.
step is the count after this update (1 first). max_exp_avg_sq may be None unless amsgrad.

>>> import numpy as np; from lamina import _C
>>> p = np.ones(1); m = np.zeros(1); v = np.zeros(1)
>>> _C.adam_step(p, np.ones(1), m, v, None, 1, 0.1, 0.9, 0.999, 1e-8, 0.0, False, False); round(p[0], 6)
0.9
)doc");
}
