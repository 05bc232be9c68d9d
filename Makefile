# The one test command: `make test` installs lamina with its test extras, builds and runs the
# C++ unit tests with CTest, then runs pytest against the installed package.
PYTHON ?= python3
BUILD ?= build/tests
JOBS ?= 2

.PHONY: test install ctest pytest sanitize dev clean

test: install ctest pytest sanitize

install:
	$(PYTHON) -m pip install --upgrade pip >/dev/null
	$(PYTHON) -m pip install ".[test,viz,onnx,dist]"
	# PyTorch is the tests' oracle (never a runtime dependency); the CPU wheel on this machine kind is
	# local. A failed install fails `make test`: without it the comparisons could not run.
	$(PYTHON) -m pip install torch==2.13.0

ctest:
	cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=Release -DLAMINA_BUILD_TESTS=ON -DLAMINA_BUILD_PYTHON=OFF
	cmake --build $(BUILD) -j $(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j $(JOBS)

pytest:
	# Run from tests/ against the installed package (not the source tree); exit 5 = no tests.
	cd tests && $(PYTHON) -m pytest -q -p no:cacheprovider . ; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

# ASan+UBSan build of the C++ tests and the _C module in build/asan; runs ctest and the kernel-facing
# pytest files against the instrumented module (tools/sanitize.sh; ~5 min from scratch on 2 cores).
sanitize:
	PYTHON=$(PYTHON) JOBS=$(JOBS) bash tools/sanitize.sh

# Developer loop: build the extension in place so PYTHONPATH=python picks it up.
dev:
	bash tools/dev_build.sh build/dev

clean:
	rm -rf build
