// Python binding of the graph executor: _C.GraphProgram holds a validated instruction list and
// its slot table (arena regions and external arrays, each kept alive here), and runs a whole
// step per call with the GIL released. Only `callback` instructions (ops without a C++ kernel)
// take the GIL back, to run their Python function.
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "bind_enums.h"
#include "common.h"
#include "graph.h"

namespace py = pybind11;
using namespace lamina_py;
namespace lg = lamina::graph;

namespace {

// Slot indices of one instruction: at most kSlots, each -1 or a (32-bit) slot number.
void set_slots(lg::Instr& in, const std::vector<int64_t>& slots) {
  if (slots.size() > static_cast<size_t>(lg::kSlots))
    value_error("slots: at most ", lg::kSlots, " values, got ", slots.size());
  for (int k = 0; k < lg::kSlots; ++k) in.slot[k] = -1;
  for (size_t k = 0; k < slots.size(); ++k) {
    // A slot index that does not fit the narrower field would wrap into a valid-looking one.
    if (slots[k] < -1 || slots[k] > INT32_MAX) value_error("slots[", k, "]: value ", slots[k], " out of range");
    in.slot[k] = static_cast<int32_t>(slots[k]);
  }
}

std::vector<int64_t> slots_of(const lg::Instr& in) {
  int n = lg::kSlots;
  while (n > 0 && in.slot[n - 1] < 0) --n;
  return std::vector<int64_t>(in.slot, in.slot + n);
}

class GraphProgram {
 public:
  GraphProgram(const py::list& instrs, int64_t n_slots, int64_t n_scalars)
      : slots_(checked_count(n_slots, "n_slots"), nullptr), bytes_(static_cast<size_t>(n_slots), 0),
        keep_(static_cast<size_t>(n_slots)), n_scalars_(n_scalars) {
    if (n_scalars < 0) value_error("n_scalars: expected >= 0, got ", n_scalars);
    for (size_t k = 0; k < instrs.size(); ++k) {
      py::handle item = instrs[k];
      if (!py::isinstance<lg::Instr>(item))
        type_error("instrs[", k, "]: expected a GraphInstr, got ", std::string(py::str(py::type::of(item).attr("__name__"))));
      prog_.push_back(item.cast<const lg::Instr&>());
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
      bad = lg::run(prog_, slots_.data(), sc, &CallbackState::call, &st, &err,
                    profile_.empty() ? nullptr : profile_.data());
    }
    if (!profile_.empty() && bad < 0) ++profile_runs_;
    if (st.error) {
      st.error->restore();
      delete st.error;
      throw py::error_already_set();
    }
    if (bad >= 0)
      value_error("graph instruction ", bad, " (", lg::op_name(prog_[bad].op), "): ", err);
  }

  size_t size() const { return prog_.size(); }

  // The step profile: while on, each run adds every instruction's wall time to its entry.
  void set_profiling(bool on) {
    profile_.assign(on ? prog_.size() : 0, 0.0);
    profile_runs_ = 0;
  }
  py::array_t<double> profile_seconds() const {
    py::array_t<double> out(static_cast<py::ssize_t>(prog_.size()));
    double* o = out.mutable_data();
    for (size_t k = 0; k < prog_.size(); ++k) o[k] = profile_.empty() ? 0.0 : profile_[k];
    return out;
  }
  int64_t profile_runs() const { return profile_runs_; }

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
  std::vector<double> profile_;   // empty: profiling off
  int64_t profile_runs_ = 0;
};


void bind_attrs(py::module_& m) {
  AttrsBinding<lamina::ConvParams>(m, "ConvParams", "Convolution sizes (NCHW; csrc/conv.h).")
      .field("N", &lamina::ConvParams::N).field("C", &lamina::ConvParams::C).field("H", &lamina::ConvParams::H)
      .field("W", &lamina::ConvParams::W).field("K", &lamina::ConvParams::K).field("KH", &lamina::ConvParams::KH)
      .field("KW", &lamina::ConvParams::KW).field("stride_h", &lamina::ConvParams::stride_h)
      .field("stride_w", &lamina::ConvParams::stride_w).field("pad_h", &lamina::ConvParams::pad_h)
      .field("pad_w", &lamina::ConvParams::pad_w).field("dil_h", &lamina::ConvParams::dil_h)
      .field("dil_w", &lamina::ConvParams::dil_w).field("groups", &lamina::ConvParams::groups)
      .done();
  AttrsBinding<lamina::PoolParams>(m, "PoolParams", "Pooling window sizes (NCHW; csrc/pool.h).")
      .field("N", &lamina::PoolParams::N).field("C", &lamina::PoolParams::C).field("H", &lamina::PoolParams::H)
      .field("W", &lamina::PoolParams::W).field("KH", &lamina::PoolParams::KH).field("KW", &lamina::PoolParams::KW)
      .field("stride_h", &lamina::PoolParams::stride_h).field("stride_w", &lamina::PoolParams::stride_w)
      .field("pad_h", &lamina::PoolParams::pad_h).field("pad_w", &lamina::PoolParams::pad_w)
      .field("dil_h", &lamina::PoolParams::dil_h).field("dil_w", &lamina::PoolParams::dil_w)
      .field("ceil_mode", &lamina::PoolParams::ceil_mode)
      .done();
  AttrsBinding<lg::GemmAttrs>(m, "GemmAttrs", "gemm: C = alpha op(A) op(B) + beta C, then bias and act.")
      .field("trans_a", &lg::GemmAttrs::trans_a).field("trans_b", &lg::GemmAttrs::trans_b)
      .field("M", &lg::GemmAttrs::M).field("N", &lg::GemmAttrs::N).field("K", &lg::GemmAttrs::K)
      .field("act", &lg::GemmAttrs::act).field("bias_axis", &lg::GemmAttrs::bias_axis)
      .field("alpha", &lg::GemmAttrs::alpha).field("beta", &lg::GemmAttrs::beta)
      .field("batch", &lg::GemmAttrs::batch)
      .done();
  AttrsBinding<lg::ActAttrs>(m, "ActAttrs", "act_forward / act_backward over n elements.")
      .field("n", &lg::ActAttrs::n).field("kind", &lg::ActAttrs::kind)
      .field("negative_slope", &lg::ActAttrs::negative_slope)
      .done();
  AttrsBinding<lg::BiasGradAttrs>(m, "BiasGradAttrs", "bias_grad_rows: db (F) = column sums of dy (N, F).")
      .field("N", &lg::BiasGradAttrs::N).field("F", &lg::BiasGradAttrs::F)
      .done();
  AttrsBinding<lg::CrossEntropyAttrs>(m, "CrossEntropyAttrs", "ce_forward / ce_backward over (N, C) logits.")
      .field("N", &lg::CrossEntropyAttrs::N).field("C", &lg::CrossEntropyAttrs::C)
      .field("ignore_index", &lg::CrossEntropyAttrs::ignore_index).field("mean", &lg::CrossEntropyAttrs::mean)
      .done();
  AttrsBinding<lg::FillAttrs>(m, "FillAttrs", "fill: y[:n] = value.")
      .field("n", &lg::FillAttrs::n).field("value", &lg::FillAttrs::value)
      .done();
  AttrsBinding<lg::ElementwiseAttrs>(m, "ElementwiseAttrs", "add, sub, mul, div, copy, accumulate over n elements.")
      .field("n", &lg::ElementwiseAttrs::n)
      .done();
  AttrsBinding<lg::UnaryAttrs>(m, "UnaryAttrs", "unary: y = kind(x) over n elements.")
      .field("n", &lg::UnaryAttrs::n).field("kind", &lg::UnaryAttrs::kind)
      .done();
  AttrsBinding<lg::ScaleAttrs>(m, "ScaleAttrs", "scale: y = alpha x over n elements.")
      .field("n", &lg::ScaleAttrs::n).field("alpha", &lg::ScaleAttrs::alpha)
      .done();
  AttrsBinding<lg::SgdAttrs>(m, "SgdAttrs", "sgd over n elements; the rest are runtime scalar-table indices.")
      .field("n", &lg::SgdAttrs::n).field("lr", &lg::SgdAttrs::lr).field("momentum", &lg::SgdAttrs::momentum)
      .field("dampening", &lg::SgdAttrs::dampening).field("weight_decay", &lg::SgdAttrs::weight_decay)
      .field("nesterov", &lg::SgdAttrs::nesterov).field("first_step", &lg::SgdAttrs::first_step)
      .done();
  AttrsBinding<lg::AdamAttrs>(m, "AdamAttrs", "adam over n elements; lr..step are runtime scalar-table indices.")
      .field("n", &lg::AdamAttrs::n).field("decoupled", &lg::AdamAttrs::decoupled)
      .field("amsgrad", &lg::AdamAttrs::amsgrad).field("lr", &lg::AdamAttrs::lr).field("beta1", &lg::AdamAttrs::beta1)
      .field("beta2", &lg::AdamAttrs::beta2).field("eps", &lg::AdamAttrs::eps)
      .field("weight_decay", &lg::AdamAttrs::weight_decay).field("step", &lg::AdamAttrs::step)
      .done();
  AttrsBinding<lg::CallbackAttrs>(m, "CallbackAttrs", "callback: the caller runs callback `id`.")
      .field("id", &lg::CallbackAttrs::id)
      .done();
  AttrsBinding<lg::ConvAttrs>(m, "ConvAttrs", "conv2d_forward / conv2d_backward; act applies to the forward output.")
      .field("params", &lg::ConvAttrs::params).field("act", &lg::ConvAttrs::act)
      .field("negative_slope", &lg::ConvAttrs::negative_slope)
      .done();
  AttrsBinding<lg::PoolAttrs>(m, "PoolAttrs", "max / average pooling; the last two fields: average pooling only.")
      .field("params", &lg::PoolAttrs::params).field("count_include_pad", &lg::PoolAttrs::count_include_pad)
      .field("divisor_override", &lg::PoolAttrs::divisor_override)
      .done();
  AttrsBinding<lg::AdaptivePoolAttrs>(m, "AdaptivePoolAttrs", "adaptive average pooling (N, C, H, W) -> (N, C, OH, OW).")
      .field("N", &lg::AdaptivePoolAttrs::N).field("C", &lg::AdaptivePoolAttrs::C).field("H", &lg::AdaptivePoolAttrs::H)
      .field("W", &lg::AdaptivePoolAttrs::W).field("OH", &lg::AdaptivePoolAttrs::OH)
      .field("OW", &lg::AdaptivePoolAttrs::OW)
      .done();
  AttrsBinding<lg::BroadcastAttrs>(m, "BroadcastAttrs", "broadcast: y (outer, mid, inner) = x kind s (mid).")
      .field("outer", &lg::BroadcastAttrs::outer).field("mid", &lg::BroadcastAttrs::mid)
      .field("inner", &lg::BroadcastAttrs::inner).field("kind", &lg::BroadcastAttrs::kind)
      .done();
  AttrsBinding<lg::ReduceBroadcastAttrs>(m, "ReduceBroadcastAttrs", "reduce_broadcast: ds (mid) = alpha sum dy (* x).")
      .field("outer", &lg::ReduceBroadcastAttrs::outer).field("mid", &lg::ReduceBroadcastAttrs::mid)
      .field("inner", &lg::ReduceBroadcastAttrs::inner).field("alpha", &lg::ReduceBroadcastAttrs::alpha)
      .done();
  AttrsBinding<lg::PointwiseLossAttrs>(m, "PointwiseLossAttrs", "loss_forward / loss_backward: scale * sum over n.")
      .field("n", &lg::PointwiseLossAttrs::n).field("kind", &lg::PointwiseLossAttrs::kind)
      .field("scale", &lg::PointwiseLossAttrs::scale)
      .done();
  AttrsBinding<lg::BatchNormAttrs>(m, "BatchNormAttrs", "batch_norm_forward / batch_norm_backward over x (N, C, S).")
      .field("N", &lg::BatchNormAttrs::N).field("C", &lg::BatchNormAttrs::C).field("S", &lg::BatchNormAttrs::S)
      .field("training", &lg::BatchNormAttrs::training).field("relu", &lg::BatchNormAttrs::relu)
      .field("cumulative_average", &lg::BatchNormAttrs::cumulative_average)
      .field("momentum", &lg::BatchNormAttrs::momentum).field("eps", &lg::BatchNormAttrs::eps)
      .done();
}

}  // namespace

void bind_graph(py::module_& m) {
  bind_enum<lg::Op>(m, "OpCode", lg::kOpCount, &lg::op_name, "Graph instruction codes (csrc/graph.h).");
  bind_enum<lg::DType>(m, "DType", lg::kDTypeCount, &lg::dtype_name, "Element types of graph operands.");
  bind_enum<lg::UnaryKind>(m, "UnaryKind", lg::kUnaryKindCount, &lg::unary_kind_name, "Kinds of the unary instruction.");
  bind_enum<lg::BroadcastKind>(m, "BroadcastKind", lg::kBroadcastKindCount, &lg::broadcast_kind_name,
                               "Kinds of the broadcast instruction (RSUB: s - x).");
  bind_enum<lg::LossKind>(m, "LossKind", lg::kLossKindCount, &lg::loss_kind_name, "Pointwise loss kinds.");
  py::enum_<lamina::BiasAxis>(m, "BiasAxis", "Which axis of C a GEMM bias runs along.")
      .value("NONE", lamina::BiasAxis::none)
      .value("PER_ROW", lamina::BiasAxis::per_row)
      .value("PER_COL", lamina::BiasAxis::per_col);
  bind_attrs(m);

  py::class_<lg::Instr>(m, "GraphInstr", "One graph instruction: op code, dtype, slot indices and its attrs struct.")
      .def(py::init([](lg::Op op, lg::DType dtype, const std::vector<int64_t>& slots, const lg::Attrs& attrs) {
             lg::Instr in;
             in.op = op;
             in.dtype = dtype;
             set_slots(in, slots);
             in.attrs = attrs;
             return in;
           }),
           py::arg("op"), py::arg("dtype"), py::arg("slots"), py::arg("attrs"))
      .def_readonly("op", &lg::Instr::op)
      .def_readonly("dtype", &lg::Instr::dtype)
      .def_property_readonly("slots", &slots_of)
      .def_readonly("attrs", &lg::Instr::attrs)
      .def("__repr__", [](const py::object& self) {
        return "GraphInstr(" + std::string(py::str(self.attr("op"))) + ", " + std::string(py::str(self.attr("dtype"))) +
               ", slots=" + std::string(py::repr(self.attr("slots"))) + ", attrs=" +
               std::string(py::repr(self.attr("attrs"))) + ")";
      });

  py::class_<GraphProgram>(m, "GraphProgram",
                           "A planned step: instructions over buffer slots, run in one call (see csrc/graph.h).")
      .def(py::init<const py::list&, int64_t, int64_t>(), py::arg("instrs"), py::arg("n_slots"),
           py::arg("n_scalars"))
      .def("set_arena", &GraphProgram::set_arena, py::arg("arena"), py::arg("slots"), py::arg("offsets"),
           py::arg("sizes"))
      .def("set_slot", &GraphProgram::set_slot, py::arg("slot"), py::arg("array"))
      .def("set_inputs", &GraphProgram::set_inputs, py::arg("slots"), py::arg("dtypes"), py::arg("nbytes"))
      .def("run", &GraphProgram::run, py::arg("inputs"), py::arg("scalars"), py::arg("callback") = py::none())
      .def("set_profiling", &GraphProgram::set_profiling, py::arg("on"),
           "Turns the step profile on (zeroed) or off: while on, every run adds each instruction's wall time.")
      .def("profile_seconds", &GraphProgram::profile_seconds,
           "Seconds spent in each instruction over the profiled runs (float64, one per instruction).")
      .def_property_readonly("profile_runs", &GraphProgram::profile_runs, "Completed runs since profiling was turned on.")
      .def("__len__", &GraphProgram::size);
  m.def("_graph_side_by_side", [](py::object on) {
        if (!on.is_none()) lamina::graph::set_side_by_side(on.cast<bool>());
        return lamina::graph::side_by_side();
      }, py::arg("on") = py::none(),
      "Tuning / test switch: independent neighbouring GEMM, activation, bias-gradient and SGD "
      "instructions of a compiled step run side by side (True) or one after another (False, the default). "
      "Returns the setting.");
}
