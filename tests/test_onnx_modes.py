"""lamina.onnx.export exports in eval mode, as torch.onnx.export's default
(training=TrainingMode.EVAL): a model in training mode is exported with running statistics and
identity dropout, and the export leaves the model exactly as it found it (buffers, parameters,
each module's mode, the random stream)."""
import numpy as np
import pytest

import lamina
from lamina import nn

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")


def _trained_resnet():
    lamina.manual_seed(0)
    model = nn.Sequential(lamina.models.resnet_mnist(width=4), nn.Dropout(0.5))
    model.train()
    x = lamina.randn(4, 1, 12, 12)
    for _ in range(2):                        # running statistics off their initial values
        model(x)
    return model


def _state(model):
    return {k: v.numpy().copy() for k, v in model.state_dict().items()}


def test_export_in_training_mode_changes_no_state_and_restores_every_mode(tmp_path):
    model = _trained_resnet()
    model[0].block2.eval()                    # mixed modes: each module's own mode comes back
    model[0].fc.eval()
    modes = [(name, m.training) for name, m in model.named_modules()]
    assert {t for _, t in modes} == {True, False}
    before = _state(model)
    x = lamina.randn(3, 1, 12, 12)
    lamina.manual_seed(7)
    lamina.onnx.export(model, x, tmp_path / "m.onnx")
    after_export_draw = lamina.randn(5).numpy()
    lamina.manual_seed(7)
    assert np.array_equal(after_export_draw, lamina.randn(5).numpy()), "export consumed random numbers"
    after = _state(model)
    assert list(after) == list(before)
    for k in before:
        assert after[k].dtype == before[k].dtype and np.array_equal(after[k], before[k]), k
    assert [(name, m.training) for name, m in model.named_modules()] == modes


def test_training_mode_export_computes_the_eval_model(tmp_path):
    model = _trained_resnet()
    x = np.random.default_rng(1).standard_normal((5, 1, 12, 12)).astype(np.float32)
    lamina.onnx.export(model, lamina.tensor(x[:2]), tmp_path / "m.onnx")
    assert model.training
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x})[0]
    with lamina.no_grad():
        want = model.eval()(lamina.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    ops = [n.op_type for n in onnx.load(str(tmp_path / "m.onnx")).graph.node]
    assert "Dropout" not in ops


def test_modes_are_restored_when_the_export_fails(tmp_path):
    model = _trained_resnet()
    before = _state(model)
    with pytest.raises(ValueError, match="input channels"):
        lamina.onnx.export(model, lamina.zeros(2, 3, 12, 12), tmp_path / "bad.onnx")   # wrong channels
    assert all(m.training for m in model.modules())
    for k, v in _state(model).items():
        assert np.array_equal(v, before[k]), k
    assert not (tmp_path / "bad.onnx").exists()
