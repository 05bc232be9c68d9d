#include "common.h"

void bind_activation(pybind11::module_& m) {}
