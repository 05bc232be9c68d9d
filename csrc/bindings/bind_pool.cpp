#include "common.h"

void bind_pool(pybind11::module_& m) {}
