#include "common.h"

void bind_loss(pybind11::module_& m) {}
