"""lamina.onnx.export: the exported models pass onnx.checker, and onnxruntime and ONNX's reference
evaluator give lamina's outputs to 1e-5 at the export batch size and another (issue 17)."""
import os
import subprocess
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

import lamina
from lamina import nn

onnx = pytest.importorskip("onnx")       # the `onnx` extra; the Makefile installs it for CI
ort = pytest.importorskip("onnxruntime")
from onnx.reference import ReferenceEvaluator  # noqa: E402

TOL = 1e-5


def _perturb(model, seed=0):
    """Non-trivial weights (biases too), so a wrong layout cannot hide behind zeros."""
    rng = np.random.default_rng(seed)
    for p in model.parameters():
        a = p.detach().numpy()
        a[...] = (a + 0.1 * rng.standard_normal(p.shape)).astype(p.dtype)
    return model


def _check(model, example_shape, tmp_path, other_batch=5, **kwargs):
    path = tmp_path / "model.onnx"
    x = lamina.tensor(np.random.default_rng(1).standard_normal(example_shape).astype(np.float32))
    proto = lamina.onnx.export(model, x, path, **kwargs)
    loaded = onnx.load(str(path))
    onnx.checker.check_model(loaded, full_check=True)
    assert loaded.opset_import[0].version == kwargs.get("opset_version", 17)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    reference = ReferenceEvaluator(loaded)
    in_name = session.get_inputs()[0].name
    for batch in (example_shape[0], other_batch):
        xb = np.random.default_rng(batch).standard_normal((batch,) + tuple(example_shape[1:])).astype(np.float32)
        with lamina.no_grad():
            want = model(lamina.tensor(xb)).numpy()
        got_ort = session.run(None, {in_name: xb})[0]
        got_ref = reference.run(None, {in_name: xb})[0]
        assert got_ort.shape == want.shape and got_ref.shape == want.shape
        np.testing.assert_allclose(got_ort, want, rtol=0, atol=TOL)
        np.testing.assert_allclose(got_ref, want, rtol=0, atol=TOL)
    return proto


@pytest.mark.parametrize("name,make,shape", [
    ("mlp", lambda: lamina.models.mlp(), (4, 1, 28, 28)),
    ("lenet5", lambda: lamina.models.lenet5(), (4, 1, 28, 28)),
    ("resnet_mnist", lambda: lamina.models.resnet_mnist(), (4, 1, 28, 28)),
])
def test_models_export_and_match(tmp_path, name, make, shape):
    lamina.manual_seed(0)
    _check(_perturb(make()).eval(), shape, tmp_path)     # inference export: batch norm uses running stats


def test_resnet_block_adds_the_skip(tmp_path):
    lamina.manual_seed(0)
    proto = _check(_perturb(lamina.models.resnet_mnist(width=4)).eval(), (2, 1, 12, 12), tmp_path, other_batch=3)
    ops = [n.op_type for n in proto.graph.node]
    # stem + 3 blocks of 2 convs + 2 projections; a BN after each conv; one skip Add per block
    assert ops.count("Add") == 3 and ops.count("Conv") == 9 and ops.count("BatchNormalization") == 9
    assert "GlobalAveragePool" in ops


@pytest.mark.parametrize("kwargs", [
    dict(stride=1, padding=0, dilation=1, groups=1),
    dict(stride=2, padding=1, dilation=1, groups=1),
    dict(stride=1, padding=2, dilation=2, groups=2),
    dict(stride=3, padding=1, dilation=2, groups=4),
    dict(stride=1, padding="same", dilation=2, groups=1),
    dict(stride=1, padding="valid", dilation=1, groups=2, bias=False),
], ids=str)
@pytest.mark.parametrize("nd", [1, 2])
def test_conv_options(tmp_path, nd, kwargs):
    lamina.manual_seed(2)
    conv = (nn.Conv1d if nd == 1 else nn.Conv2d)(4, 8, 3, **kwargs)
    shape = (2, 4, 11) if nd == 1 else (2, 4, 11, 9)
    _check(_perturb(nn.Sequential(conv, nn.ReLU())), shape, tmp_path)


@pytest.mark.parametrize("layer,shape", [
    (nn.MaxPool2d(2), (2, 3, 8, 8)),
    (nn.MaxPool2d(3, stride=2, padding=1), (2, 3, 9, 7)),
    (nn.MaxPool2d(3, stride=2, padding=1, dilation=2, ceil_mode=True), (2, 3, 10, 9)),
    (nn.MaxPool1d(3, stride=2, padding=1), (2, 3, 11)),
    (nn.AvgPool2d(2), (2, 3, 8, 8)),
    (nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), (2, 3, 9, 9)),
    (nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=True), (2, 3, 9, 9)),
    (nn.AvgPool1d(2, stride=2), (2, 3, 10)),
    (nn.AdaptiveAvgPool2d(1), (2, 3, 7, 5)),
    (nn.AdaptiveAvgPool2d((2, 3)), (2, 3, 8, 9)),
], ids=repr)
def test_pools(tmp_path, layer, shape):
    _check(nn.Sequential(layer), shape, tmp_path)


ACTIVATIONS = [nn.ReLU(), nn.Sigmoid(), nn.Tanh(), nn.LeakyReLU(0.2), nn.Softplus(), nn.Softplus(beta=2.0),
               nn.Softplus(beta=0.5, threshold=0.3), nn.Softmax(dim=1), nn.LogSoftmax(dim=1), nn.Softmax(),
               nn.LogSoftmax(dim=-1), nn.Identity(), nn.Step()]
ACTIVATIONS += [make() for name, make in (("ELU", lambda: nn.ELU(0.7)), ("GELU", lambda: nn.GELU()),
                                          ("GELU", lambda: nn.GELU(approximate="tanh")), ("SiLU", lambda: nn.SiLU()))
                if hasattr(nn, name)]


@pytest.mark.parametrize("act", ACTIVATIONS, ids=repr)
def test_activations(tmp_path, act):
    lamina.manual_seed(3)
    model = _perturb(nn.Sequential(nn.Linear(6, 5), act))
    model[0].weight.data *= 4                         # pre-activations well past +-1 (and softplus' threshold)
    _check(model, (3, 6), tmp_path)


def test_flatten_variants_and_dropout(tmp_path):
    lamina.manual_seed(4)
    model = nn.Sequential(OrderedDict([
        ("conv", nn.Conv2d(2, 3, 3, padding=1)), ("flat_hw", nn.Flatten(start_dim=2)),      # (N, 3, 30)
        ("drop", nn.Dropout(0.5)), ("fc", nn.Linear(30, 4)), ("flat", nn.Flatten()), ("out", nn.Linear(12, 2)),
    ]))
    _perturb(model).train()
    proto = lamina.onnx.export(model, lamina.zeros(2, 2, 5, 6), tmp_path / "train_mode.onnx")
    assert model.training and model.drop.training       # the caller's mode is restored
    assert [n.op_type for n in proto.graph.node].count("Identity") == 2   # dropout + the named output
    _check(model.eval(), (2, 2, 5, 6), tmp_path)


def test_names_fixed_batch_and_opset(tmp_path):
    model = lamina.models.mlp((4, 3))
    proto = lamina.onnx.export(model, lamina.zeros(2, 4), tmp_path / "m.onnx", input_names=["pixels"],
                               output_names=["logits"], dynamic_batch=False, opset_version=13)
    assert [i.name for i in proto.graph.input] == ["pixels"] and [o.name for o in proto.graph.output] == ["logits"]
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_value == 2 and proto.opset_import[0].version == 13
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    x = np.ones((2, 4), np.float32)
    np.testing.assert_allclose(session.run(["logits"], {"pixels": x})[0], model(lamina.tensor(x)).detach().numpy(), atol=TOL)
    with pytest.raises(Exception):
        session.run(None, {"pixels": np.ones((3, 4), np.float32)})          # batch fixed at 2
    dyn = lamina.onnx.export(model, lamina.zeros(2, 4), tmp_path / "d.onnx")
    assert dyn.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_refusals(tmp_path):
    class Custom(nn.Module):
        def forward(self, x):
            return x * 2

    with pytest.raises(NotImplementedError, match=r"module 1 \(Custom\) has no ONNX export rule"):
        lamina.onnx.export(nn.Sequential(nn.Linear(2, 2), Custom()), lamina.zeros(1, 2), tmp_path / "c.onnx")
    assert not (tmp_path / "c.onnx").exists()
    with pytest.raises(TypeError, match="model: expected a lamina.nn.Module"):
        lamina.onnx.export(lambda x: x, lamina.zeros(1, 2), tmp_path / "f.onnx")
    with pytest.raises(ValueError, match="opset_version"):
        lamina.onnx.export(nn.Linear(2, 2), lamina.zeros(1, 2), tmp_path / "o.onnx", opset_version=7)


def test_export_failure_keeps_the_old_file(tmp_path):
    path = tmp_path / "m.onnx"
    lamina.onnx.export(nn.Linear(2, 2), lamina.zeros(1, 2), path)
    before = path.read_bytes()
    with pytest.raises(NotImplementedError):
        lamina.onnx.export(nn.Sequential(nn.MaxPool2d(2, return_indices=True)), lamina.zeros(1, 1, 4, 4), path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["m.onnx"]


DATA = Path(os.environ.get("LAMINA_DATA", "/work/shared/data"))


@pytest.mark.skipif(not (DATA / "mnist").exists() and not any(DATA.glob("*ubyte*")), reason="needs MNIST")
def test_cli_train_export_onnx(tmp_path):
    out = tmp_path / "run"
    env = dict(os.environ, PYTHONPATH=str(Path(lamina.__file__).resolve().parent.parent))
    proc = subprocess.run(
        [sys.executable, "-m", "lamina", "train", "--model", "mlp", "--epochs", "1", "--limit-train", "200",
         "--limit-test", "100", "--data", str(DATA), "--out", str(out), "--threads", "1", "--no-progress",
         "--export-onnx", str(tmp_path / "model.onnx")],
        capture_output=True, text=True, env=env, timeout=300, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert f"exported {tmp_path / 'model.onnx'}" in proc.stdout
    model = lamina.models.mlp()
    model.load_state_dict(OrderedDict((k, v) for k, v in lamina.load(out / "model.safetensors").items()
                                      if not k.startswith("optim.")))
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).random((3, 1, 28, 28), dtype=np.float32)
    np.testing.assert_allclose(session.run(None, {"input": x})[0], model(lamina.tensor(x)).detach().numpy(), atol=TOL)


@pytest.mark.skipif(not hasattr(nn, "BatchNorm2d"), reason="BatchNorm (issue 11) is not in this checkout yet")
def test_batchnorm_exports_with_running_statistics(tmp_path):
    lamina.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(2, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Dropout(0.3),
                          nn.Linear(4 * 4 * 4, 3))
    model.train()
    for _ in range(3):                                  # move the running statistics off their init
        model(lamina.randn(8, 2, 6, 6) * 3 + 1)
    _check(_perturb(model).eval(), (2, 2, 6, 6), tmp_path)


@pytest.mark.skipif(not hasattr(nn, "LayerNorm"), reason="LayerNorm (issue 11) is not in this checkout yet")
@pytest.mark.parametrize("affine", [True, False])
def test_layernorm_exports(tmp_path, affine):
    lamina.manual_seed(6)
    model = nn.Sequential(nn.Linear(6, 8), nn.LayerNorm(8, elementwise_affine=affine), nn.Tanh(), nn.Linear(8, 2))
    _check(_perturb(model), (3, 6), tmp_path)
