#include "common.h"

void bind_conv(pybind11::module_& m) {}
