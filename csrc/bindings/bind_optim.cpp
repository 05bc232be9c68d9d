#include "common.h"

void bind_optim(pybind11::module_& m) {}
