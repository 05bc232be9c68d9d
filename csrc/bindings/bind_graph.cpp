// Python binding of the graph executor: _C.GraphProgram holds a validated instruction list and
// its slot table (arena regions and external arrays, each kept alive here), and runs a whole
// step per call with the GIL released. Only `callback` instructions (ops without a C++ kernel)
// take the GIL back, to run their Python function.
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "common.h"
#include "graph.h"

namespace py = pybind11;
using namespace lamina_py;
namespace lg = lamina::graph;

namespace {

lg::DType parse_dtype(const std::string& s, const char* name) {
  if (s == "float32") return lg::DType::f32;
  if (s == "float64") return lg::DType::f64;
  if (s == "int64") return lg::DType::i64;
  value_error(name, ": expected 'float32', 'float64' or 'int64', got '", s, "'");
}

class GraphProgram {
 public:
  GraphProgram(const py::list& instrs, int64_t n_slots, int64_t n_scalars)
      : slots_(checked_count(n_slots, "n_slots"), nullptr), bytes_(static_cast<size_t>(n_slots), 0),
        keep_(static_cast<size_t>(n_slots)), n_scalars_(n_scalars) {
    if (n_scalars < 0) value_error("n_scalars: expected >= 0, got ", n_scalars);
    for (size_t k = 0; k < instrs.size(); ++k) {
      auto t = instrs[k].cast<py::tuple>();
      if (t.size() != 6)
        value_error("instrs[", k, "]: expected (op, dtype, slots, ints, floats, scalars), got ", t.size(), " items");
      lg::Instr in;
      in.op = static_cast<lg::Op>(t[0].cast<int32_t>());
      in.dtype = parse_dtype(t[1].cast<std::string>(), "dtype");
      fill(t[2].cast<std::vector<int64_t>>(), in.slot, lg::kSlots, k, "slots");
      fill(t[3].cast<std::vector<int64_t>>(), in.i, lg::kInts, k, "ints");
      auto fl = t[4].cast<std::vector<double>>();
      if (fl.size() > lg::kFloats) value_error("instrs[", k, "].floats: at most ", lg::kFloats, " values");
      for (size_t j = 0; j < fl.size(); ++j) in.f[j] = fl[j];
      fill(t[5].cast<std::vector<int64_t>>(), in.sc, lg::kScalars, k, "scalars");
      prog_.push_back(in);
    }
  }

  void set_arena(const py::array& arena, const std::vector<int64_t>& slots,
                 const std::vector<int64_t>& offsets, const std::vector<int64_t>& sizes) {
    if (!(arena.flags() & py::array::c_style) || !arena.writeable())
      value_error("arena: expected a writeable C-contiguous array");
    if (slots.size() != offsets.size() || slots.size() != sizes.size())
      value_error("offsets: expected one offset and size per slot (", slots.size(), "), got ",
                  offsets.size(), " and ", sizes.size());
    char* base = static_cast<char*>(const_cast<void*>(arena.data()));
    for (size_t k = 0; k < slots.size(); ++k) {
      check_slot(slots[k]);
      // Written so that offset + size cannot overflow (2^62 + 2^62 wrapped negative and passed).
      if (offsets[k] < 0 || sizes[k] < 0 || offsets[k] > arena.nbytes() || sizes[k] > arena.nbytes() - offsets[k])
        value_error("offsets[", k, "]: region of ", sizes[k], " bytes at offset ", offsets[k],
                    " lies outside the arena of ", arena.nbytes(), " bytes");
      slots_[slots[k]] = base + offsets[k];
      bytes_[slots[k]] = sizes[k];
      keep_[slots[k]] = arena;
    }
    validated_ = false;
  }

  void set_slot(int64_t slot, const py::array& a) {
    check_slot(slot);
    if (!(a.flags() & py::array::c_style) || !a.writeable())
      value_error("array for slot ", slot, ": expected a writeable C-contiguous array");
    slots_[slot] = const_cast<void*>(a.data());
    bytes_[slot] = a.nbytes();
    keep_[slot] = a;
    validated_ = false;
  }

  void set_inputs(const std::vector<int64_t>& slots, const std::vector<std::string>& dtypes,
                  const std::vector<int64_t>& nbytes) {
    if (slots.size() != dtypes.size() || slots.size() != nbytes.size())
      value_error("dtypes: expected one dtype and size per input slot");
    for (auto s : slots) check_slot(s);
    input_slots_ = slots;
    input_dtypes_ = dtypes;
    input_dtype_objs_.clear();
    for (const auto& d : dtypes) input_dtype_objs_.push_back(py::dtype(d));
    for (size_t k = 0; k < slots.size(); ++k) bytes_[slots[k]] = nbytes[k];
    input_bytes_ = nbytes;
    validated_ = false;
  }

  void run(const py::sequence& inputs, const py::array& scalars, const py::object& callback) {
    if (static_cast<size_t>(py::len(inputs)) != input_slots_.size())
      value_error("inputs: expected ", input_slots_.size(), " arrays, got ", py::len(inputs));
    std::vector<py::array> held;
    held.reserve(input_slots_.size());
    for (size_t k = 0; k < input_slots_.size(); ++k) {
      py::object obj = inputs[k];
      if (!py::isinstance<py::array>(obj)) type_error("inputs[", k, "]: expected a numpy array");
      py::array a = py::reinterpret_borrow<py::array>(obj);
      // dtype objects compare in C; str(dtype) is a Python-level numpy call (~1 us per input).
      if (!a.dtype().equal(input_dtype_objs_[k]))
        type_error("inputs[", k, "]: expected dtype ", input_dtypes_[k], ", got ", dtype_of(a));
      if (!(a.flags() & py::array::c_style)) value_error("inputs[", k, "]: expected a C-contiguous array");
      if (a.nbytes() != input_bytes_[k])
        value_error("inputs[", k, "]: expected ", input_bytes_[k], " bytes (the traced shape), got ", a.nbytes());
      slots_[input_slots_[k]] = const_cast<void*>(a.data());
      held.push_back(a);
    }
    const double* sc = nullptr;
    if (scalars.size()) {
      if (!is_f64(scalars) || !(scalars.flags() & py::array::c_style))
        type_error("scalars: expected a C-contiguous float64 array");
      if (scalars.size() < n_scalars_)
        value_error("scalars: expected ", n_scalars_, " values, got ", scalars.size());
      sc = static_cast<const double*>(scalars.data());
    } else if (n_scalars_ > 0) {
      value_error("scalars: expected ", n_scalars_, " values, got 0");
    }
    if (!validated_) {
      for (size_t k = 0; k < slots_.size(); ++k)
        if (!slots_[k]) value_error("slot ", k, " has no buffer bound");
      const std::string msg = lg::validate(prog_, bytes_, n_scalars_);
      if (!msg.empty()) value_error("GraphProgram: ", msg);
      validated_ = true;
    }
    CallbackState st{callback, nullptr};
    std::string err;
    int64_t bad;
    {
      py::gil_scoped_release nogil;
      bad = lg::run(prog_, slots_.data(), sc, &CallbackState::call, &st, &err);
    }
    if (st.error) {
      st.error->restore();
      delete st.error;
      throw py::error_already_set();
    }
    if (bad >= 0)
      value_error("graph instruction ", bad, " (", lg::op_name(prog_[bad].op), "): ", err);
  }

  size_t size() const { return prog_.size(); }

 private:
  struct CallbackState {
    py::object fn;
    py::error_already_set* error;
    static bool call(void* user, int64_t id) {
      auto* s = static_cast<CallbackState*>(user);
      py::gil_scoped_acquire gil;
      if (s->fn.is_none()) return false;
      try {
        s->fn(id);
      } catch (py::error_already_set& e) {
        s->error = new py::error_already_set(std::move(e));
        return false;
      }
      return true;
    }
  };

  // Checked before the slot vectors are sized: a negative count became a huge size_t.
  static size_t checked_count(int64_t n, const char* name) {
    if (n < 0) value_error(name, ": expected >= 0, got ", n);
    return static_cast<size_t>(n);
  }

  template <class D>
  static void fill(const std::vector<int64_t>& v, D* dst, int cap, size_t k, const char* what) {
    if (static_cast<int>(v.size()) > cap) value_error("instrs[", k, "].", what, ": at most ", cap, " values");
    for (size_t j = 0; j < v.size(); ++j) {
      // A slot index that does not fit the narrower field would wrap into a valid-looking one.
      if (static_cast<int64_t>(static_cast<D>(v[j])) != v[j])
        value_error("instrs[", k, "].", what, "[", j, "]: value ", v[j], " out of range");
      dst[j] = static_cast<D>(v[j]);
    }
  }

  void check_slot(int64_t s) const {
    if (s < 0 || s >= static_cast<int64_t>(slots_.size()))
      value_error("slot: expected an index in [0, ", slots_.size(), "), got ", s);
  }

  std::vector<lg::Instr> prog_;
  std::vector<void*> slots_;
  std::vector<int64_t> bytes_;
  std::vector<py::object> keep_;
  int64_t n_scalars_;
  std::vector<int64_t> input_slots_;
  std::vector<std::string> input_dtypes_;
  std::vector<py::dtype> input_dtype_objs_;
  std::vector<int64_t> input_bytes_;
  bool validated_ = false;
};

}  // namespace

void bind_graph(py::module_& m) {
  py::class_<GraphProgram>(m, "GraphProgram",
                           "A planned step: instructions over buffer slots, run in one call (see csrc/graph.h).")
      .def(py::init<const py::list&, int64_t, int64_t>(), py::arg("instrs"), py::arg("n_slots"),
           py::arg("n_scalars"))
      .def("set_arena", &GraphProgram::set_arena, py::arg("arena"), py::arg("slots"), py::arg("offsets"),
           py::arg("sizes"))
      .def("set_slot", &GraphProgram::set_slot, py::arg("slot"), py::arg("array"))
      .def("set_inputs", &GraphProgram::set_inputs, py::arg("slots"), py::arg("dtypes"), py::arg("nbytes"))
      .def("run", &GraphProgram::run, py::arg("inputs"), py::arg("scalars"), py::arg("callback") = py::none())
      .def("__len__", &GraphProgram::size);
  m.attr("GRAPH_OPS") = py::dict(
      py::arg("gemm") = 0, py::arg("act_forward") = 1, py::arg("act_backward") = 2,
      py::arg("bias_grad_rows") = 3, py::arg("ce_forward") = 4, py::arg("ce_backward") = 5,
      py::arg("fill") = 6, py::arg("add") = 7, py::arg("sub") = 8, py::arg("mul") = 9,
      py::arg("scale") = 10, py::arg("copy") = 11, py::arg("accumulate") = 12, py::arg("sgd") = 13,
      py::arg("adam") = 14, py::arg("callback") = 15, py::arg("conv2d_forward") = 16,
      py::arg("conv2d_backward") = 17, py::arg("max_pool2d_forward") = 18, py::arg("max_pool2d_backward") = 19,
      py::arg("avg_pool2d_forward") = 20, py::arg("avg_pool2d_backward") = 21,
      py::arg("adaptive_avg_pool2d_forward") = 22, py::arg("adaptive_avg_pool2d_backward") = 23,
      py::arg("broadcast") = 24, py::arg("reduce_broadcast") = 25, py::arg("div") = 26, py::arg("unary") = 27,
      py::arg("loss_forward") = 28, py::arg("loss_backward") = 29);
}
