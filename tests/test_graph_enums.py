"""Issue 12: shared enums are defined once in C++ and read through the binding; graph
instructions carry named attribute structs; executor functions stay short; the reduced-loss
scale has one definition that eager, the lowering and both executors use."""
import ast
import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import _C
from lamina.graph import compile, executor
from lamina.graph.ir import ConvParams, PoolParams

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "python" / "lamina"
ENUMS = [_C.OpCode, _C.Activation, _C.DType, _C.UnaryKind, _C.BroadcastKind, _C.LossKind, _C.BiasAxis]


# ---------------------------------------------------------------- one definition, bound
@pytest.mark.parametrize("enum", ENUMS, ids=lambda e: e.__name__)
def test_every_member_round_trips_and_codes_are_dense(enum):
    members = enum.__members__
    assert len(members) > 0
    codes = sorted(int(m) for m in members.values())
    assert codes == list(range(len(members)))            # 0 .. count-1, no gaps, no duplicates
    for name, m in members.items():
        assert enum(int(m)) == m and m.name == name and name == name.upper()


def test_counts_match_the_cpp_tables():
    # Pinned like csrc/graph.h's static_assert(kOpCount == 34): adding an op is deliberate.
    assert len(_C.OpCode.__members__) == 34
    assert [m.lower() for m in _C.Activation.__members__] == [
        "identity", "relu", "leaky_relu", "softplus", "sigmoid", "tanh", "step"]
    assert list(_C.DType.__members__) == ["FLOAT32", "FLOAT64", "INT64"]


def test_activation_names_are_the_kinds_the_kernels_take():
    x = np.array([-1.0, 0.5])
    for name in _C.Activation.__members__:
        _C.act_forward(name.lower(), x, np.empty_like(x))
    with pytest.raises(ValueError, match="kind: expected one of identity, relu, leaky_relu, softplus, sigmoid, "
                                         "tanh, step; got 'gelu'"):
        _C.act_forward("gelu", x, np.empty_like(x))


def test_every_native_node_op_has_its_own_code_and_every_code_is_used():
    codes = [code for code, _ in executor._INSTRS.values()]
    # node ops map one-to-one onto instruction codes; only CALLBACK is not a node op's own
    assert len(set(codes)) == len(codes)
    assert set(codes) | {_C.OpCode.CALLBACK} == set(_C.OpCode.__members__.values())
    assert set(executor.NATIVE_OPS) == set(executor._INSTRS)


def _int_tables_and_compares(path):
    """(line, text) of each module-level str -> int table and each `kind/op/code == <int>` test."""
    bad = []
    tree = ast.parse(path.read_text())
    tables = [st.value for st in tree.body if isinstance(st, (ast.Assign, ast.AnnAssign))]
    for node in ast.walk(tree):
        if node in tables and isinstance(node, ast.Dict) and node.keys and all(
                isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys) and all(
                isinstance(v, ast.Constant) and type(v.value) is int for v in node.values):
            bad.append((node.lineno, ast.unparse(node)[:60]))
        if isinstance(node, ast.Compare):
            sides = [node.left] + list(node.comparators)
            named = any(re.search(r"\b(kind|op|code)\b", ast.unparse(s)) for s in sides)
            ints = any(isinstance(s, ast.Constant) and type(s.value) is int for s in sides)
            if named and ints:
                bad.append((node.lineno, ast.unparse(node)[:60]))
    return bad


@pytest.mark.parametrize("path", [PKG / "graph" / "executor.py", PKG / "graph" / "lower.py"]
                         + sorted((PKG / "ops").glob("*.py")), ids=lambda p: p.name)
def test_no_literal_op_or_kind_numbers_in_python(path):
    assert _int_tables_and_compares(path) == []


def test_the_literal_checker_sees_a_table_and_a_compare(tmp_path):
    f = tmp_path / "m.py"
    f.write_text('_ACT = {"identity": 0, "relu": 1}\nif kind == 4:\n    pass\nshape = {"n": "a"}\n'
                 'def f():\n    return {"stride": 2}\n')
    assert [line for line, _ in _int_tables_and_compares(f)] == [1, 2]


def test_executor_reads_codes_from_the_binding():
    src = (PKG / "graph" / "executor.py").read_text()
    assert "GRAPH_OPS" not in src and "_C.OpCode" in src
    tree = ast.parse(src)
    for node in ast.walk(tree):     # every GraphInstr(...) names its code, never a number
        if isinstance(node, ast.Call) and ast.unparse(node.func).endswith("GraphInstr"):
            assert not isinstance(node.args[0], ast.Constant), ast.unparse(node)


def test_cpp_has_no_literal_kind_range_checks():
    # the old `a[14] > 6`, `a[1] > 4` style checks: ranges come from the enum counts now
    src = (ROOT / "csrc" / "graph.cpp").read_text()
    assert re.findall(r"\b(?:a|in\.i)\[\d+\]", src) == []          # no positional attribute reads
    assert "kOpCount" in src and "static_assert(std::size(kTable) == kOpCount" in src


# ---------------------------------------------------------------- typed records
@pytest.mark.parametrize("cls", [ConvParams, PoolParams], ids=lambda c: c.__name__)
def test_python_records_mirror_the_bound_structs(cls):
    assert tuple(f.name for f in dataclasses.fields(cls)) == getattr(_C, cls.__name__).fields
    values = {f.name: (True if f.type in ("bool", bool) else 3 + i) for i, f in enumerate(dataclasses.fields(cls))}
    rec = cls(**values)
    native = rec.native()
    assert {k: getattr(native, k) for k in values} == values
    with pytest.raises(dataclasses.FrozenInstanceError):
        rec.N = 1


def test_bound_attrs_have_named_fields_and_reject_unknown_ones():
    p = _C.ConvParams(N=2, C=3, H=5, W=5, K=4, KH=3, KW=3, pad_h=1, pad_w=1)
    a = _C.ConvAttrs(params=p, act=_C.Activation.RELU)
    instr = _C.GraphInstr(_C.OpCode.CONV2D_FORWARD, _C.DType.FLOAT32, [0, 1, -1, 2], a)
    assert instr.op == _C.OpCode.CONV2D_FORWARD and instr.slots == [0, 1, -1, 2]
    assert instr.attrs.params.K == 4 and instr.attrs.act == _C.Activation.RELU
    assert "pad_h=1" in repr(instr)
    with pytest.raises(TypeError, match="ConvParams: unknown field 'stride'"):
        _C.ConvParams(stride=2)
    with pytest.raises(ValueError, match=r"slots: at most 9 values"):
        _C.GraphInstr(_C.OpCode.FILL, _C.DType.FLOAT32, list(range(10)), _C.FillAttrs(n=1))


def test_compiled_conv_and_pool_nodes_carry_named_params():
    lamina.manual_seed(0)
    model = lamina.models.lenet5()
    opt = lamina.optim.SGD(model.parameters(), lr=0.01)
    f = compile(model, F.cross_entropy, opt)
    rng = np.random.default_rng(0)
    f(rng.standard_normal((2, 1, 28, 28)).astype(np.float32), np.array([1, 2]))
    # LeNet's conv + relu + 2x2 pools become fused conv blocks (ConvParams); a 3x3 pool stays a pool.
    convs = [n for n in f.graph.nodes if n.op.startswith("conv")]
    lamina.manual_seed(0)
    pooled = lamina.nn.Sequential(lamina.nn.Conv2d(1, 2, 3), lamina.nn.ReLU(), lamina.nn.MaxPool2d(3),
                                  lamina.nn.Flatten(), lamina.nn.Linear(2 * 8 * 8, 10))
    g = compile(pooled, F.cross_entropy, lamina.optim.SGD(pooled.parameters(), lr=0.01))
    g(rng.standard_normal((2, 1, 26, 26)).astype(np.float32), np.array([1, 2]))
    pools = [n for n in g.graph.nodes if n.op.endswith("pool_fwd") or n.op.endswith("pool_bwd")]
    assert convs and pools
    assert all(isinstance(n.attrs.params, ConvParams) for n in convs)
    assert all(isinstance(n.attrs.params, PoolParams) for n in pools if "adaptive" not in n.op)
    first = convs[0].attrs.params
    assert (first.N, first.C, first.H, first.K, first.KH) == (2, 1, 28, 6, 5)


# ---------------------------------------------------------------- short functions
def _long_python_functions(path, limit=80):
    out = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            n = node.end_lineno - node.lineno + 1
            if n > limit:
                out.append(f"{path.name}:{node.lineno} {node.name} ({n} lines)")
    return out


@pytest.mark.parametrize("path", sorted((PKG / "graph").glob("*.py")), ids=lambda p: p.name)
def test_no_graph_function_longer_than_80_lines(path):
    assert _long_python_functions(path) == []


def test_the_length_checker_sees_a_long_function(tmp_path):
    f = tmp_path / "long.py"
    f.write_text("def f():\n" + "    x = 1\n" * 85)
    assert _long_python_functions(f) == [f"long.py:1 f (86 lines)"]


def _long_cpp_functions(text, limit=80):
    """Bodies opened by a line that looks like a function head `...) [const] {`, by brace count."""
    lines = text.splitlines()
    out = []
    head = re.compile(r"^\s*(?!if\b|for\b|while\b|switch\b|else\b|do\b|case\b|\}).*\)\s*(const\s*)?\{\s*$")
    for i, line in enumerate(lines):
        if not head.match(line):
            continue
        depth = 0
        for j in range(i, len(lines)):
            depth += lines[j].count("{") - lines[j].count("}")
            if depth == 0:
                break
        if j - i + 1 > limit:
            out.append(f"line {i + 1} ({j - i + 1} lines): {line.strip()[:50]}")
    return out


def test_no_cpp_executor_function_longer_than_80_lines():
    assert _long_cpp_functions((ROOT / "csrc" / "graph.cpp").read_text()) == []
    assert _long_cpp_functions("int f() {\n" + "  x();\n" * 90 + "}\n") != []


# ---------------------------------------------------------------- the loss scale, written once
def test_loss_scale_is_one_definition():
    assert _C.loss_scale(True, 4) == 0.25 and _C.loss_scale(False, 4) == 1.0 and _C.loss_scale(True, 0) == 1.0
    assert _C.reduced_loss(3.0, True, 2) == 1.5 and np.isnan(_C.reduced_loss(3.0, True, 0))
    for path in ("ops/loss.py", "graph/executor.py"):
        src = (PKG / path).read_text()
        assert "_C.loss_scale" in src
        assert not re.search(r"1\.0 / (count|x\.size)", src), path


@pytest.mark.parametrize("executor_kind", ["native", "python"])
@pytest.mark.parametrize("target", [[0, 2, -100, 1], [-100, -100, -100, -100]], ids=["some_ignored", "all_ignored"])
def test_cross_entropy_mean_scale_compiled_equals_eager(executor_kind, target):
    rng = np.random.default_rng(3)
    x = rng.standard_normal((4, 5)).astype(np.float32)
    t = np.array(target)

    def make():
        lamina.manual_seed(1)
        model = lamina.nn.Linear(5, 3)
        return model, lamina.optim.SGD(model.parameters(), lr=0.0)

    model, opt = make()
    loss = F.cross_entropy(model(lamina.tensor(x)), lamina.tensor(t))
    loss.backward()
    ref_loss, ref_grad = loss.detach().numpy(), model.weight.grad.numpy()

    model, opt = make()
    step = compile(model, F.cross_entropy, opt, executor=executor_kind)
    got = np.float32(step(x, t))      # the float32 loss, exactly
    np.testing.assert_array_equal(got, ref_loss)       # NaN == NaN here: a mean over no rows
    np.testing.assert_array_equal(model.weight.grad.numpy(), ref_grad)
    assert np.isnan(got) == (min(target) == max(target) == -100)
