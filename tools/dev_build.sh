#!/usr/bin/env bash
# Build lamina._C (and the C++ tests) into BUILD_DIR and install the module into python/lamina
# atomically, so `PYTHONPATH=python python -c "import lamina"` uses the fresh build.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD_DIR="${1:-build/dev}"
# ccache, where installed, lets several checkouts share compiled objects.
launcher=()
if command -v ccache >/dev/null; then launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache); fi
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DLAMINA_BUILD_TESTS=ON \
  -Dpybind11_DIR="$(python3 -m pybind11 --cmakedir)" "${launcher[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j 2
so=$(ls "$BUILD_DIR"/_C*.so)
tmp="python/lamina/.$(basename "$so").$$"
cp "$so" "$tmp" && mv -f "$tmp" "python/lamina/$(basename "$so")"
echo "installed $(basename "$so") into python/lamina"
