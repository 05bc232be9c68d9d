// _C.normal_blocks / fused_scale_shift: the random family's transforms over numpy buffers that
// lamina.random fills with PyTorch-compatible uniform draws.
#include <cstdint>

#include "common.h"
#include "random.h"

namespace py = pybind11;
using namespace lamina_py;

void bind_random(py::module_& m) {
  m.def(
      "normal_blocks",
      [](const py::array& data, double mean, double std) {
        const int64_t n = static_cast<int64_t>(data.size());
        if (n % 16 != 0) value_error("data: expected a multiple of 16 values, got ", n);
        dispatch_float(data, "data", [&](auto tag) {
          using T = decltype(tag);
          T* p = data_of<T>(data, "data", true);
          py::gil_scoped_release nogil;
          lamina::normal_blocks(n / 16, p, static_cast<T>(mean), static_cast<T>(std));
        });
      },
      py::arg("data"), py::arg("mean"), py::arg("std"),
      R"doc(In place: each block of 16 uniforms in [0, 1) becomes 16 normal values with PyTorch's
Box-Muller (value j pairs with j + 8), times std plus mean in one rounding.

>>> import numpy as np; from lamina import _C
>>> u = np.full(16, 0.5, np.float32); _C.normal_blocks(u, 0.0, 1.0); round(float(u[0]), 4)
-1.1774
)doc");

  m.def(
      "fused_scale_shift",
      [](const py::array& x, const py::array& y, double scale, double shift) {
        dispatch_float(x, "x", [&](auto tag) {
          using T = decltype(tag);
          const auto [xp, yp] = elementwise_io<T>(x, y);
          const int64_t n = static_cast<int64_t>(x.size());
          py::gil_scoped_release nogil;
          lamina::fused_scale_shift(n, xp, yp, static_cast<T>(scale), static_cast<T>(shift));
        });
      },
      py::arg("x"), py::arg("y"), py::arg("scale"), py::arg("shift"),
      R"doc(y = x * scale + shift, rounded once (scale and shift in x's dtype). y may be x.

>>> import numpy as np; from lamina import _C
>>> y = np.empty(2); _C.fused_scale_shift(np.array([0.5, 1.0]), y, 4.0, 1.0); y.tolist()
[3.0, 5.0]
)doc");
}
