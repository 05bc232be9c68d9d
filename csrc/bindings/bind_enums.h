// Binding helpers for the enums and attribute structs shared with Python: members and fields
// come from the C++ name tables, so the binding restates no code and no value.
#pragma once
#include <pybind11/pybind11.h>

#include <cctype>
#include <functional>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "common.h"

namespace lamina_py {

inline std::string upper_name(const char* s) {
  std::string u(s);
  for (auto& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

// py::enum_ E with one member per code [0, count): member k is named upper(name_of(E(k))).
template <class E, class NameOf>
py::enum_<E> bind_enum(py::module_& m, const char* name, int count, NameOf name_of, const char* doc) {
  py::enum_<E> e(m, name, doc);
  for (int k = 0; k < count; ++k) e.value(upper_name(name_of(static_cast<E>(k))).c_str(), static_cast<E>(k));
  return e;
}

// A plain attribute struct bound with named read-write fields, a keyword constructor that
// names any unknown or ill-typed field, `fields` (the names, in order) and a readable repr.
template <class A>
class __attribute__((visibility("hidden"))) AttrsBinding {
 public:
  AttrsBinding(py::module_& m, const char* name, const char* doc)
      : cls_(m, name, doc), name_(name), setters_(std::make_shared<Setters>()) {}

  template <class F>
  AttrsBinding& field(const char* fname, F A::*member) {
    cls_.def_readwrite(fname, member);
    setters_->emplace_back(fname, [member](A& a, py::handle v) { a.*member = v.cast<F>(); });
    return *this;
  }

  // Call once, after the last field.
  void done() {
    auto setters = setters_;
    std::string name = name_;
    cls_.def(py::init([setters, name](const py::kwargs& kw) {
      A a;
      for (auto item : kw) {
        const std::string key = py::str(item.first);
        auto it = setters->begin();
        while (it != setters->end() && it->first != key) ++it;
        if (it == setters->end()) type_error(name, ": unknown field '", key, "'");
        try {
          it->second(a, item.second);
        } catch (const py::cast_error&) {
          type_error(name, ".", key, ": cannot take a value of type ",
                     std::string(py::str(py::type::of(item.second).attr("__name__"))));
        }
      }
      return a;
    }));
    py::list names;
    for (const auto& s : *setters) names.append(s.first);
    cls_.attr("fields") = py::tuple(names);
    cls_.def("__repr__", [setters, name](const py::object& self) {
      std::ostringstream out;
      out << name << "(";
      for (size_t k = 0; k < setters->size(); ++k)
        out << (k ? ", " : "") << (*setters)[k].first << "="
            << std::string(py::repr(self.attr((*setters)[k].first.c_str())));
      out << ")";
      return out.str();
    });
  }

  py::class_<A>& cls() { return cls_; }

 private:
  using Setters = std::vector<std::pair<std::string, std::function<void(A&, py::handle)>>>;
  py::class_<A> cls_;
  std::string name_;
  std::shared_ptr<Setters> setters_;
};

}  // namespace lamina_py
