#!/usr/bin/env bash
# Build lamina with AddressSanitizer + UndefinedBehaviorSanitizer (-DLAMINA_SANITIZE=ON) in
# build/asan, run the C++ tests under CTest, then run a subset of the Python tests against the
# instrumented _C module (libasan preloaded into the Python interpreter).
#
#   bash tools/sanitize.sh            # C++ tests + Python subset
#   SANITIZE_PYTHON=0 bash tools/sanitize.sh   # C++ tests only
#   SANITIZE_PYTESTS="tests/test_gemm.py" bash tools/sanitize.sh
#
# Any ASan report or UBSan finding fails the run (UBSan is built with -fno-sanitize-recover).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR="${BUILD_DIR:-build/asan}"
JOBS="${JOBS:-2}"
PYTHON="${PYTHON:-python3}"
SANITIZE_PYTHON="${SANITIZE_PYTHON:-1}"
# The Python subset: every test that drives _C kernels (good input, bad input, threads, special
# values), not the slow end-to-end MNIST training runs. ~2 min under ASan on 2 cores.
SANITIZE_PYTESTS="${SANITIZE_PYTESTS:-tests/test_validation.py tests/test_properties.py tests/test_threads.py
  tests/test_determinism.py tests/test_gemm.py tests/test_conv.py tests/test_pool.py
  tests/test_kernels_elementwise.py tests/test_optim.py tests/test_compile.py tests/test_ops.py
  tests/test_nn.py tests/test_autograd.py tests/test_tensor.py tests/test_signal.py
  tests/test_serialization.py}"

t0=$(date +%s)
generator=()
command -v ninja >/dev/null 2>&1 && generator=(-G Ninja)
pybind_dir=$("$PYTHON" -m pybind11 --cmakedir 2>/dev/null || true)
build_python=ON
if [ -z "$pybind_dir" ] || [ "$SANITIZE_PYTHON" = "0" ]; then build_python=OFF; fi

# -O1: fast enough to run the tests, still keeps frames readable; no NDEBUG so asserts stay on.
cmake -S . -B "$BUILD_DIR" "${generator[@]}" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_FLAGS_RELWITHDEBINFO="-O1 -g" -DLAMINA_SANITIZE=ON -DLAMINA_BUILD_TESTS=ON \
  -DLAMINA_BUILD_PYTHON="$build_python" ${pybind_dir:+-Dpybind11_DIR="$pybind_dir"} >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"
t_build=$(date +%s)

# halt_on_error: the first report fails the test; leaks are checked in the C++ tests only.
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1:strict_string_checks=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
(cd "$BUILD_DIR" && ctest --output-on-failure -j "$JOBS")
t_ctest=$(date +%s)
echo "sanitize: C++ tests passed under ASan+UBSan (build $((t_build - t0)) s, ctest $((t_ctest - t_build)) s)"

if [ "$build_python" = "OFF" ]; then
  echo "sanitize: Python part skipped (SANITIZE_PYTHON=0 or pybind11 not found)"
  exit 0
fi

# A private copy of the package with the instrumented _C, so python/lamina stays untouched.
pkg="$BUILD_DIR/pkg"
rm -rf "$pkg"
mkdir -p "$pkg"
cp -r python/lamina "$pkg/lamina"
rm -f "$pkg"/lamina/_C*.so
cp "$BUILD_DIR"/_C*.so "$pkg/lamina/"
libasan=$(${CXX:-c++} -print-file-name=libasan.so)
libubsan=$(${CXX:-c++} -print-file-name=libubsan.so)
# detect_leaks=0: CPython's own allocations at exit are not ours to report.
# Pytest runs from the repo root on the copied package (tests/conftest.py imports PyTorch as an
# oracle; it runs fine with libasan preloaded). Child processes a test starts inherit it all.
(
  export ASAN_OPTIONS="detect_leaks=0:halt_on_error=1:verify_asan_link_order=0"
  export LD_PRELOAD="$libasan $libubsan"
  export PYTHONPATH="$ROOT/$pkg"
  export LAMINA_SANITIZED=1
  # Make sure the instrumented module is the one imported, not an installed lamina.
  "$PYTHON" -c "import lamina._C as c, sys; p = c.__file__; print('sanitize: using', p); sys.exit(0 if p.startswith('$ROOT/$pkg') else 1)"
  # shellcheck disable=SC2086
  "$PYTHON" -m pytest -q -p no:cacheprovider $SANITIZE_PYTESTS
)
t_py=$(date +%s)
echo "sanitize: Python subset passed against the ASan+UBSan extension ($((t_py - t_ctest)) s)"
echo "sanitize: total $((t_py - t0)) s"
