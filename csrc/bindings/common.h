// Shared checks for the pybind11 layer: every array that crosses into a kernel is checked for
// dtype, C-contiguity, writeability and shape here, and bad input becomes a Python ValueError /
// TypeError naming the argument with expected vs actual -- never a crash, never a misread.
#pragma once
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <sstream>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace lamina_py {
namespace py = pybind11;

inline std::string shape_str(const py::array& a) {
  std::ostringstream s;
  s << "(";
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s << (i ? ", " : "") << a.shape(i);
  if (a.ndim() == 1) s << ",";
  s << ")";
  return s.str();
}

inline std::string shape_str(const std::vector<int64_t>& v) {
  std::ostringstream s;
  s << "(";
  for (size_t i = 0; i < v.size(); ++i) s << (i ? ", " : "") << v[i];
  if (v.size() == 1) s << ",";
  s << ")";
  return s.str();
}

template <class... Args>
[[noreturn]] inline void value_error(Args&&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  throw py::value_error(s.str());
}

template <class... Args>
[[noreturn]] inline void type_error(Args&&... parts) {
  std::ostringstream s;
  (s << ... << parts);
  throw py::type_error(s.str());
}

template <class T> const char* dtype_name();
template <> inline const char* dtype_name<float>() { return "float32"; }
template <> inline const char* dtype_name<double>() { return "float64"; }
template <> inline const char* dtype_name<int64_t>() { return "int64"; }
template <> inline const char* dtype_name<uint8_t>() { return "uint8"; }

inline std::string dtype_of(const py::array& a) { return py::str(a.dtype()).cast<std::string>(); }

// Pointer to the data of `a` after checking it holds T, is C-contiguous and (if asked)
// writeable. `name` is the argument name used in the error message.
template <class T>
T* data_of(const py::array& a, const char* name, bool writeable = false) {
  if (!py::isinstance<py::array_t<T>>(a) || !a.dtype().is(py::dtype::of<T>()))
    type_error(name, ": expected dtype ", dtype_name<T>(), ", got ", dtype_of(a));
  if (!(a.flags() & py::array::c_style))
    value_error(name, ": expected a C-contiguous array, got strides that are not (make it contiguous with numpy.ascontiguousarray)");
  if (writeable && !a.writeable()) value_error(name, ": expected a writeable array");
  return static_cast<T*>(const_cast<void*>(a.data()));
}

inline void check_ndim(const py::array& a, const char* name, py::ssize_t ndim) {
  if (a.ndim() != ndim)
    value_error(name, ": expected ", ndim, "-D array, got ", a.ndim(), "-D with shape ", shape_str(a));
}

inline void check_shape(const py::array& a, const char* name, const std::vector<int64_t>& shape) {
  bool ok = a.ndim() == static_cast<py::ssize_t>(shape.size());
  for (size_t i = 0; ok && i < shape.size(); ++i) ok = a.shape(i) == shape[i];
  if (!ok) value_error(name, ": expected shape ", shape_str(shape), ", got ", shape_str(a));
}

inline void check_same_dtype(const py::array& a, const char* an, const py::array& b, const char* bn) {
  if (!a.dtype().is(b.dtype()))
    type_error(bn, ": expected dtype ", dtype_of(a), " (same as ", an, "), got ", dtype_of(b));
}

// Output must not overlap an input unless the kernel documents in-place support.
inline void check_no_alias(const py::array& out, const char* on, const py::array& in, const char* in_name) {
  const char* o0 = static_cast<const char*>(out.data());
  const char* o1 = o0 + out.nbytes();
  const char* i0 = static_cast<const char*>(in.data());
  const char* i1 = i0 + in.nbytes();
  if (out.nbytes() && in.nbytes() && o0 < i1 && i0 < o1)
    value_error(on, ": output must not overlap input ", in_name);
}

// In-place use is allowed (the very same buffer); any other overlap is an error.
inline void check_same_or_disjoint(const py::array& out, const char* on, const py::array& in, const char* in_name) {
  if (out.data() == in.data() && out.nbytes() == in.nbytes()) return;
  check_no_alias(out, on, in, in_name);
}

inline std::vector<int64_t> shape_of(const py::array& a) {
  std::vector<int64_t> s(a.ndim());
  for (py::ssize_t i = 0; i < a.ndim(); ++i) s[i] = a.shape(i);
  return s;
}

// The buffers of an elementwise kernel x -> y: y of x's dtype and shape, writable, and either x
// itself (in place) or disjoint from it.
template <class T>
std::pair<const T*, T*> elementwise_io(const py::array& x, const py::array& y) {
  const T* xp = data_of<T>(x, "x");
  check_same_dtype(x, "x", y, "y");
  T* yp = data_of<T>(y, "y", true);
  check_shape(y, "y", shape_of(x));
  check_same_or_disjoint(y, "y", x, "x");
  return {xp, yp};
}

inline bool is_f32(const py::array& a) { return a.dtype().is(py::dtype::of<float>()); }
inline bool is_f64(const py::array& a) { return a.dtype().is(py::dtype::of<double>()); }

// Calls f(float{}) or f(double{}) according to a's dtype; anything else is a TypeError.
template <class F>
auto dispatch_float(const py::array& a, const char* name, F&& f) {
  if (is_f32(a)) return f(float{});
  if (is_f64(a)) return f(double{});
  type_error(name, ": expected dtype float32 or float64, got ", dtype_of(a));
}

}  // namespace lamina_py
