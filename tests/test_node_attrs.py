"""Typed graph records: every node kind carries a small frozen dataclass (ops/_params.py) that
mirrors its bound C++ attrs struct field for field, is made where the node is emitted (so a
misspelt field or kind fails at trace time), and converts itself with `.native()`."""
import dataclasses

import numpy as np
import pytest

import lamina
import lamina.nn.functional as F
from lamina import _C, nn
from lamina.ops import _params
from lamina.ops._params import ActAttrs, ConvAttrs, ConvParams, GemmAttrs, PoolAttrs, PoolParams, PyCallAttrs

RECORDS = [getattr(_params, n) for n in _params.__all__ if n.endswith("Attrs") and n != "PyCallAttrs"]
# each kind's first value: a valid member name of the field's bound enum
KIND_VALUES = {"Activation": "relu", "UnaryKind": "abs", "BroadcastKind": "rsub", "LossKind": "bce"}


def _sample(cls):
    """Field values that differ from the defaults, one per field."""
    values = {}
    for i, f in enumerate(dataclasses.fields(cls)):
        if f.name in cls.PYTHON_ONLY:
            continue
        if f.name in cls.ENUMS:
            values[f.name] = KIND_VALUES[cls.ENUMS[f.name]]
        elif f.name == "bias_axis":
            values[f.name] = "row"
        elif f.type in ("bool", bool):
            values[f.name] = True
        elif f.name == "params":
            values[f.name] = f.default.__class__(N=2, C=4, H=7, W=6, KH=3, KW=2, stride_h=2)
        elif f.type in ("float", float):
            values[f.name] = 0.5 + i
        else:
            values[f.name] = 3 + i
    return values


def test_every_bound_attrs_struct_has_a_record():
    bound = {n for n in dir(_C) if n.endswith("Attrs") and n != "CallbackAttrs"}
    assert bound == {c.__name__ for c in RECORDS}


@pytest.mark.parametrize("cls", RECORDS, ids=lambda c: c.__name__)
def test_each_record_mirrors_its_bound_struct(cls):
    names = tuple(f.name for f in dataclasses.fields(cls) if f.name not in cls.PYTHON_ONLY)
    assert names == getattr(_C, cls.__name__).fields
    values = _sample(cls)
    rec = cls(**values)
    native = rec.native()
    for name, v in values.items():
        got = getattr(native, name)
        if name in cls.ENUMS:
            assert got == getattr(getattr(_C, cls.ENUMS[name]), v.upper())
        elif name == "bias_axis":
            assert got == _C.BiasAxis.PER_ROW
        elif name == "params":
            assert got.N == 2 and got.stride_h == 2 and got.KW == 2
        else:
            assert got == v
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(rec, names[0], values[names[0]])


def test_a_misspelt_field_or_kind_fails_where_the_record_is_made():
    with pytest.raises(TypeError, match="slope"):
        ActAttrs(n=4, kind="relu", slope=0.1)
    with pytest.raises(ValueError, match="Activation: no kind named 'rleu'"):
        ActAttrs(n=4, kind="rleu")
    with pytest.raises(ValueError, match="bias_axis"):
        GemmAttrs(bias_axis="rows")
    with pytest.raises(TypeError, match="conv"):
        ConvAttrs(conv=ConvParams())
    # the dict-style read of older code still works, and names the missing key
    assert GemmAttrs(beta=1.0)["beta"] == 1.0
    with pytest.raises(KeyError):
        GemmAttrs()["ta"]


def _graphs():
    rng = np.random.default_rng(0)
    lamina.manual_seed(0)
    lenet = lamina.models.lenet5()
    step = lamina.compile(lenet, F.cross_entropy, lamina.optim.SGD(lenet.parameters(), lr=0.01, momentum=0.9))
    step(rng.standard_normal((2, 1, 28, 28)).astype(np.float32), np.array([1, 2]))
    yield step.graph
    resnet = lamina.models.resnet_mnist()
    step = lamina.compile(resnet, F.cross_entropy, lamina.optim.Adam(resnet.parameters(), lr=1e-3))
    step(rng.standard_normal((2, 1, 28, 28)).astype(np.float32), np.array([1, 2]))
    yield step.graph
    mixed = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 4))
    step = lamina.compile(mixed, lambda out, y: F.mse_loss(out * out.exp() + out.abs(), y),
                          lamina.optim.AdamW(mixed.parameters(), lr=1e-3))
    step(rng.standard_normal((3, 4)).astype(np.float32), rng.standard_normal((3, 4)).astype(np.float32))
    yield step.graph
    # pools the conv-block pass leaves alone (3x3 max, average)
    pools = nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU(), nn.MaxPool2d(3), nn.AvgPool2d(2), nn.Flatten(),
                          nn.Linear(8, 3))
    step = lamina.compile(pools, F.cross_entropy, lamina.optim.SGD(pools.parameters(), lr=0.1))
    step(rng.standard_normal((2, 1, 14, 14)).astype(np.float32), np.array([0, 2]))
    yield step.graph


def test_every_compiled_node_carries_a_record():
    seen = set()
    for g in _graphs():
        for n in g.nodes:
            assert not isinstance(n.attrs, dict), n.line()
            if n.op == "pycall":
                assert isinstance(n.attrs, PyCallAttrs)
            else:
                assert type(n.attrs) in RECORDS
            seen.add(type(n.attrs).__name__)
    assert {"GemmAttrs", "ConvAttrs", "PoolAttrs", "CrossEntropyAttrs", "SgdAttrs", "AdamAttrs", "FillAttrs",
            "BatchNormAttrs", "PointwiseLossAttrs", "ElementwiseAttrs", "ActAttrs"} <= seen


def test_pool_nodes_carry_pool_params():
    pools = [n for g in _graphs() for n in g.nodes if isinstance(n.attrs, PoolAttrs)]
    assert {n.op for n in pools} == {"max_pool_fwd", "max_pool_bwd", "avg_pool_fwd", "avg_pool_bwd"}
    assert all(isinstance(n.attrs.params, PoolParams) for n in pools)
