"""36 fixed seeds of tools/fuzz_kernels.py, in this process: conv2d (row Winograd forced on / off /
auto, direct / im2col, non-contiguous inputs, strides, dilation, groups), the fused conv block
(bitwise the unfused ops), matmul / linear / _C.gemm (strided, transposed, 4 KiB row strides),
sigmoid / tanh on special values, thread-count changes and two Python threads at once, all
against PyTorch in float64; and the bad-input set. The tool runs each seed in a subprocess
(catching a segfault or hang): `python tools/fuzz_kernels.py --seeds 0:600`."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
import fuzz_kernels  # noqa: E402

pytest.importorskip("torch")

SEEDS = range(36)


@pytest.mark.parametrize("seed", SEEDS)
def test_fuzz_seed(seed):
    fuzz_kernels.run_case(fuzz_kernels.make_case(seed))


def test_bad_input_raises_errors_that_name_the_argument():
    fuzz_kernels.check_bad_inputs()


def test_the_cases_cover_what_the_fuzzer_promises():
    cases = [fuzz_kernels.make_case(s) for s in range(600)]
    convs = [c for c in cases if c["family"] in ("conv", "block")]
    assert {c["family"] for c in cases} == {"conv", "block", "gemm", "act", "threads"}
    assert {c["N"] for c in convs} == set(fuzz_kernels.N_CHOICES)
    assert {c["row_winograd"] for c in convs} == {"on", "off", "auto"}
    assert {c["layout"] for c in convs} == {"contiguous", "guarded", "transposed", "sliced", "negative",
                                            "channels_last"}
    assert {c["spikes"] for c in convs} == {0.0, 1e2, 1e4}
    assert {c["threads"] for c in convs} == {1, 2} and {c["dtype"] for c in convs} == {"float32", "float64"}
    assert any(c["groups"] > 1 for c in convs) and any(c["dilation"] != (1, 1) for c in convs)
    assert any(c["stride"] != (1, 1) for c in convs) and any(not c["bias"] for c in convs)
    # C3-like shapes that row Winograd takes: 5-wide, stride 1, batch past the 16 lanes
    assert any(c["KW"] == 5 and c["stride"] == (1, 1) and c["dilation"] == (1, 1) and c["groups"] == 1
               and c["N"] >= 16 and c["row_winograd"] == "on" for c in convs)
    gemms = [c for c in cases if c["family"] == "gemm"]
    assert any(c["override"] for c in gemms) and any(c["override"] is None for c in gemms)
    assert {c["K"] for c in gemms} >= {1024, 2048, 0, 1}
    assert {c["api"] for c in gemms} == {"matmul", "linear", "gemm"}
    assert {c["a_layout"] for c in gemms} == {"contiguous", "transposed", "sliced", "negative", "padded", "guarded"}
    acts = [c for c in cases if c["family"] == "act"]
    assert {c["kind"] for c in acts} == {"sigmoid", "tanh"}
    assert {0, 1, 15, 16, 17, 100} <= {c["n"] for c in acts} and {0, 1, 15} <= {c["offset"] for c in acts}
    in_ci = [fuzz_kernels.make_case(s) for s in SEEDS]
    assert {c["family"] for c in in_ci} == {"conv", "block", "gemm", "act", "threads"}
