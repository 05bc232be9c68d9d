// DLPack capsules, both ways, for lamina tensors (which hold NumPy arrays).
//
// Export: `dlpack_export(array, versioned, read_only)` wraps the array's memory in a
// DLManagedTensor (legacy, capsule name "dltensor") or DLManagedTensorVersioned (DLPack 1.0,
// "dltensor_versioned"). The managed tensor holds a reference to the array, so the memory stays
// alive until the consumer calls the deleter -- or, if nobody consumed the capsule, until the
// capsule itself dies.
//
// Import: `dlpack_import(capsule)` takes ownership of a producer's managed tensor, renames the
// capsule "used_..." as the protocol requires, and returns a NumPy array over the same memory
// whose base object calls the producer's deleter when the array dies.
//
// The struct layouts below follow the DLPack 1.0 specification (dlpack.h, ABI-stable); they are
// written out here so the build needs no extra header.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "common.h"

namespace py = pybind11;

namespace {

// ---------------------------------------------------------------- DLPack 1.0 ABI
struct DLPackVersion {
  uint32_t major;
  uint32_t minor;
};
constexpr uint32_t kDLPackMajor = 1;
constexpr uint32_t kDLPackMinor = 0;

constexpr int32_t kDLCPU = 1;
constexpr int32_t kDLCUDAHost = 3;  // pinned host memory: CPU-addressable
constexpr int32_t kDLCUDAManaged = 13;

struct DLDevice {
  int32_t device_type;
  int32_t device_id;
};

enum DLDataTypeCode : uint8_t { kDLInt = 0, kDLUInt = 1, kDLFloat = 2, kDLBfloat = 4, kDLComplex = 5, kDLBool = 6 };

struct DLDataType {
  uint8_t code;
  uint8_t bits;
  uint16_t lanes;
};

struct DLTensor {
  void* data;
  DLDevice device;
  int32_t ndim;
  DLDataType dtype;
  int64_t* shape;
  int64_t* strides;  // in elements; nullptr means C-contiguous
  uint64_t byte_offset;
};

struct DLManagedTensor {
  DLTensor dl_tensor;
  void* manager_ctx;
  void (*deleter)(DLManagedTensor* self);
};

constexpr uint64_t kFlagReadOnly = 1ull << 0;
constexpr uint64_t kFlagIsCopied = 1ull << 1;

struct DLManagedTensorVersioned {
  DLPackVersion version;
  void* manager_ctx;
  void (*deleter)(DLManagedTensorVersioned* self);
  uint64_t flags;
  DLTensor dl_tensor;
};

static_assert(sizeof(DLDataType) == 4, "DLDataType is 4 bytes in the DLPack ABI");
static_assert(sizeof(DLDevice) == 8, "DLDevice is 8 bytes in the DLPack ABI");

constexpr const char* kLegacyName = "dltensor";
constexpr const char* kVersionedName = "dltensor_versioned";
constexpr const char* kUsedLegacyName = "used_dltensor";
constexpr const char* kUsedVersionedName = "used_dltensor_versioned";

// ---------------------------------------------------------------- export
// One allocation owns everything the consumer may read: the managed tensor, shape, strides,
// and a strong reference to the NumPy array whose memory is shared.
template <class Managed>
struct ExportContext {
  Managed managed{};
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
  PyObject* owner = nullptr;  // the NumPy array; one reference held
};

template <class Managed>
void export_deleter(Managed* self) {
  auto* ctx = static_cast<ExportContext<Managed>*>(self->manager_ctx);
  // Consumers may call the deleter from any thread, with or without the GIL.
  PyGILState_STATE gil = PyGILState_Ensure();
  Py_XDECREF(ctx->owner);
  delete ctx;
  PyGILState_Release(gil);
}

// Capsule destructor: only an unconsumed capsule still owns its tensor.
template <class Managed>
void export_capsule_destructor(PyObject* capsule) {
  const char* name = std::is_same<Managed, DLManagedTensorVersioned>::value ? kVersionedName : kLegacyName;
  if (!PyCapsule_IsValid(capsule, name)) return;  // renamed "used_...": the consumer owns it
  auto* managed = static_cast<Managed*>(PyCapsule_GetPointer(capsule, name));
  if (managed && managed->deleter) managed->deleter(managed);
}

DLDataType dl_dtype_of(const py::array& a) {
  const py::dtype dt = a.dtype();
  const char kind = dt.kind();
  const auto bits = static_cast<uint8_t>(dt.itemsize() * 8);
  const char order = dt.attr("byteorder").cast<std::string>()[0];
  if (order == '>') throw py::buffer_error("dlpack: big-endian arrays cannot be exported, got dtype " + lamina_py::dtype_of(a));
  switch (kind) {
    case 'f': return {kDLFloat, bits, 1};
    case 'i': return {kDLInt, bits, 1};
    case 'u': return {kDLUInt, bits, 1};
    case 'b': return {kDLBool, 8, 1};
    case 'c': return {kDLComplex, bits, 1};
    default: break;
  }
  throw py::buffer_error("dlpack: dtype " + lamina_py::dtype_of(a) + " has no DLPack equivalent");
}

template <class Managed>
Managed* new_export(const py::array& a, ExportContext<Managed>** out_ctx) {
  auto* ctx = new ExportContext<Managed>();
  const auto ndim = static_cast<size_t>(a.ndim());
  ctx->shape.resize(ndim);
  ctx->strides.resize(ndim);
  const auto itemsize = a.itemsize();
  for (size_t d = 0; d < ndim; ++d) {
    ctx->shape[d] = a.shape(d);
    if (a.strides(d) % itemsize != 0) {
      delete ctx;
      throw py::buffer_error("dlpack: stride " + std::to_string(a.strides(d)) + " bytes of dim " + std::to_string(d) +
                             " is not a multiple of the item size " + std::to_string(itemsize));
    }
    ctx->strides[d] = a.strides(d) / itemsize;  // DLPack strides count elements
  }
  DLTensor& t = ctx->managed.dl_tensor;
  t.data = const_cast<void*>(a.data());
  t.device = {kDLCPU, 0};
  t.ndim = static_cast<int32_t>(ndim);
  try {
    t.dtype = dl_dtype_of(a);
  } catch (...) {
    delete ctx;
    throw;
  }
  t.shape = ndim ? ctx->shape.data() : nullptr;
  t.strides = ndim ? ctx->strides.data() : nullptr;
  t.byte_offset = 0;
  ctx->owner = a.ptr();
  Py_INCREF(ctx->owner);
  ctx->managed.manager_ctx = ctx;
  ctx->managed.deleter = &export_deleter<Managed>;
  *out_ctx = ctx;
  return &ctx->managed;
}

py::capsule dlpack_export(const py::array& a, bool versioned, bool read_only, bool copied) {
  if (versioned) {
    ExportContext<DLManagedTensorVersioned>* ctx = nullptr;
    DLManagedTensorVersioned* m = new_export(a, &ctx);
    m->version = {kDLPackMajor, kDLPackMinor};
    m->flags = (read_only ? kFlagReadOnly : 0) | (copied ? kFlagIsCopied : 0);
    PyObject* cap = PyCapsule_New(m, kVersionedName, &export_capsule_destructor<DLManagedTensorVersioned>);
    if (!cap) {
      m->deleter(m);
      throw py::error_already_set();
    }
    return py::reinterpret_steal<py::capsule>(cap);
  }
  if (read_only)  // the legacy struct has no read-only flag, so a writer could not be told
    throw py::buffer_error("dlpack: a read-only tensor can only be exported as a versioned capsule "
                           "(pass max_version=(1, 0) or newer)");
  ExportContext<DLManagedTensor>* ctx = nullptr;
  DLManagedTensor* m = new_export(a, &ctx);
  PyObject* cap = PyCapsule_New(m, kLegacyName, &export_capsule_destructor<DLManagedTensor>);
  if (!cap) {
    m->deleter(m);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(cap);
}

// ---------------------------------------------------------------- import
std::string numpy_dtype_for(const DLDataType& t) {
  if (t.lanes != 1) throw py::buffer_error("from_dlpack: vector dtypes (lanes=" + std::to_string(t.lanes) + ") are not supported");
  const std::string bits = std::to_string(t.bits);
  switch (t.code) {
    case kDLFloat:
      if (t.bits == 16 || t.bits == 32 || t.bits == 64) return "float" + bits;
      break;
    case kDLInt:
      if (t.bits == 8 || t.bits == 16 || t.bits == 32 || t.bits == 64) return "int" + bits;
      break;
    case kDLUInt:
      if (t.bits == 8 || t.bits == 16 || t.bits == 32 || t.bits == 64) return "uint" + bits;
      break;
    case kDLBool:
      if (t.bits == 8) return "bool";
      break;
    case kDLComplex:
      if (t.bits == 64 || t.bits == 128) return "complex" + bits;
      break;
    case kDLBfloat:
      throw py::buffer_error("from_dlpack: bfloat16 has no NumPy equivalent; convert it to float32 first");
    default:
      break;
  }
  throw py::buffer_error("from_dlpack: unsupported DLPack dtype (code " + std::to_string(t.code) + ", bits " + bits + ")");
}

// Build the array over `t`'s memory; `base` keeps the producer's tensor alive.
py::array array_over(const DLTensor& t, py::object base) {
  if (t.device.device_type != kDLCPU && t.device.device_type != kDLCUDAHost && t.device.device_type != kDLCUDAManaged)
    throw py::buffer_error("from_dlpack: expected a CPU tensor (device type 1), got device type " +
                           std::to_string(t.device.device_type));
  if (t.ndim < 0) throw py::buffer_error("from_dlpack: negative ndim " + std::to_string(t.ndim));
  const py::dtype dt(numpy_dtype_for(t.dtype));
  const auto itemsize = static_cast<int64_t>(dt.itemsize());
  std::vector<py::ssize_t> shape(static_cast<size_t>(t.ndim)), strides(shape.size());
  int64_t step = itemsize;  // C-contiguous strides when the producer gives none
  for (int32_t d = t.ndim - 1; d >= 0; --d) {
    const int64_t n = t.shape[d];
    if (n < 0) throw py::buffer_error("from_dlpack: negative size in dim " + std::to_string(d));
    shape[d] = static_cast<py::ssize_t>(n);
    strides[d] = static_cast<py::ssize_t>(t.strides ? t.strides[d] * itemsize : step);
    step *= n;
  }
  auto* data = static_cast<char*>(t.data) + t.byte_offset;
  return py::array(dt, shape, strides, data, base);
}

template <class Managed>
void import_owner_destructor(PyObject* owner) {
  auto* m = static_cast<Managed*>(PyCapsule_GetPointer(owner, "lamina.dlpack_owner"));
  if (m && m->deleter) m->deleter(m);
}

// Returns (array, read_only).
py::tuple dlpack_import(const py::capsule& capsule) {
  PyObject* cap = capsule.ptr();
  if (PyCapsule_IsValid(cap, kVersionedName)) {
    auto* m = static_cast<DLManagedTensorVersioned*>(PyCapsule_GetPointer(cap, kVersionedName));
    if (m->version.major > kDLPackMajor)
      throw py::buffer_error("from_dlpack: DLPack version " + std::to_string(m->version.major) + "." +
                             std::to_string(m->version.minor) + " is newer than the supported 1.x");
    // Ownership moves to `owner` first, so any error below still frees the producer's tensor.
    py::object owner = py::reinterpret_steal<py::object>(
        PyCapsule_New(m, "lamina.dlpack_owner", &import_owner_destructor<DLManagedTensorVersioned>));
    if (!owner) throw py::error_already_set();
    PyCapsule_SetName(cap, kUsedVersionedName);
    const bool read_only = (m->flags & kFlagReadOnly) != 0;
    return py::make_tuple(array_over(m->dl_tensor, owner), read_only);
  }
  if (PyCapsule_IsValid(cap, kLegacyName)) {
    auto* m = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(cap, kLegacyName));
    py::object owner = py::reinterpret_steal<py::object>(
        PyCapsule_New(m, "lamina.dlpack_owner", &import_owner_destructor<DLManagedTensor>));
    if (!owner) throw py::error_already_set();
    PyCapsule_SetName(cap, kUsedLegacyName);
    return py::make_tuple(array_over(m->dl_tensor, owner), false);
  }
  const char* name = PyCapsule_GetName(cap);
  PyErr_Clear();
  throw py::value_error(std::string("capsule: expected an unconsumed DLPack capsule ('dltensor' or "
                                    "'dltensor_versioned'), got '") + (name ? name : "<unnamed>") + "'");
}

}  // namespace

void bind_dlpack(py::module_& m) {
  m.def("dlpack_export", &dlpack_export, py::arg("array"), py::arg("versioned"), py::arg("read_only"),
        py::arg("copied") = false, "A DLPack capsule sharing `array`'s memory (versioned = DLPack 1.0 struct).");
  m.def("dlpack_import", &dlpack_import, py::arg("capsule"),
        "(array, read_only): a NumPy array over a DLPack capsule's memory; consumes the capsule.");
  m.attr("DLPACK_VERSION") = py::make_tuple(kDLPackMajor, kDLPackMinor);
}
