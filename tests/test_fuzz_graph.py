"""30 fixed seeds of tools/fuzz_graph.py, in this process: random add/sub/mul/div/matmul programs
checked against PyTorch (forward, every gradient), compiled vs eager bit for bit over 3 SGD/Adam
steps, and bad input raising ValueError/TypeError. The tool itself runs each seed in a
subprocess (catching a segfault or hang); run it for longer with
`python tools/fuzz_graph.py --minutes 15`."""
import pathlib
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tools"))
import fuzz_graph  # noqa: E402

pytest.importorskip("torch")


@pytest.mark.parametrize("seed", range(30))
def test_fuzz_seed(seed):
    fuzz_graph.run_one(seed)


def test_the_programs_cover_what_the_fuzzer_promises():
    progs = [fuzz_graph.Program(s) for s in range(30)]
    code = [ins for p in progs for ins in p.code]
    assert {ins[0] for ins in code} == {"add", "sub", "mul", "div", "matmul"}
    assert any(a == b for _, _, a, b in code)                        # x - x, x + x, x * x
    assert any(isinstance(b, tuple) for _, _, _, b in code)          # Python scalars
    assert {p.kind for p in progs} == {"2d", "3d", "4d"}
    assert any(p.frozen for p in progs) and any(p.concurrent for p in progs)
    assert any(p.batch == 0 for p in progs) and any(p.batch == 1 for p in progs)
    assert {str(p.dtype.__name__) for p in progs} == {"float32", "float64"}
    assert any(p.kind == "3d" and p.x_shape[0] == 1 for p in progs)
