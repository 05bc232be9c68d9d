"""tools/torch_fashion_resnet.py (issue 14's PyTorch wall time) measures the SAME model and recipe
as `lamina train --model resnet`: the state_dicts match key for key, lamina's weights loaded into
the torch model give lamina's outputs (train and eval), the learning-rate curve is lamina's, the
augmentation takes windows of the zero-padded image, and the IDX reader reads what lamina reads."""
import gzip
import importlib.util
from pathlib import Path

import numpy as np
import pytest

import lamina
from lamina.train import onecycle_lr

from conftest import requires_torch

TOOL = Path(__file__).resolve().parent.parent / "tools" / "torch_fashion_resnet.py"


@pytest.fixture(scope="module")
def tool():
    spec = importlib.util.spec_from_file_location("torch_fashion_resnet", TOOL)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


@pytest.mark.parametrize("width", [4, 24])
def test_same_architecture_as_lamina_resnet(tool, width):
    torch = requires_torch()
    lamina.manual_seed(0)
    lm = lamina.models.resnet_mnist(width=width)
    tm = tool.build_model(torch, width)
    lsd, tsd = lm.state_dict(), tm.state_dict()
    assert list(lsd) == list(tsd)
    for k in lsd:
        assert tuple(lsd[k].shape) == tuple(tsd[k].shape), k
    # lamina's weights (with moved running statistics) in torch: the same function
    rng = np.random.default_rng(0)
    for k, v in lsd.items():
        if k.endswith("running_mean") or k.endswith(".bias"):
            v.data[...] = rng.standard_normal(v.shape) * 0.2
        elif k.endswith("running_var"):
            v.data[...] = rng.uniform(0.5, 2.0, v.shape)
    tm.load_state_dict({k: torch.from_numpy(v.detach().numpy()) for k, v in lm.state_dict().items()})
    x = rng.random((3, 1, 28, 28)).astype(np.float32)
    for mode in ("eval", "train"):
        getattr(lm, mode)()
        getattr(tm, mode)()
        with torch.no_grad():
            want = tm(torch.from_numpy(x)).numpy()
        with lamina.no_grad():
            got = lm(lamina.tensor(x)).data
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4, err_msg=mode)


def test_onecycle_is_lamina_curve(tool):
    mine, ref = tool.onecycle_lr(0.1, 3), onecycle_lr(0.1, 3)
    for t in np.linspace(0, 3, 31):
        assert mine(t) == pytest.approx(ref(t), rel=1e-12)


def test_random_crop_flip_takes_windows_of_the_padded_image(tool):
    torch = requires_torch()
    x = torch.arange(2 * 1 * 5 * 5, dtype=torch.float32).reshape(2, 1, 5, 5) + 1
    gen = torch.Generator().manual_seed(1)
    seen_flip = seen_shift = False
    for _ in range(20):
        out = tool.random_crop_flip(torch, x, gen, padding=2)
        assert out.shape == x.shape
        for i in range(2):
            padded = torch.nn.functional.pad(x[i, 0], (2, 2, 2, 2))
            windows = [(padded[r:r + 5, c:c + 5], f) for r in range(5) for c in range(5)
                       for f in (False, True)]
            match = [(w, f) for w, f in windows if torch.equal(out[i, 0], w.flip(1) if f else w)]
            assert match, "not a (mirrored) window of the padded image"
            seen_flip |= any(f for _, f in match) and not any(not f for _, f in match)
            seen_shift |= not torch.equal(out[i, 0], x[i, 0]) and not torch.equal(out[i, 0], x[i, 0].flip(1))
    assert seen_flip and seen_shift


def test_read_idx(tool, tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    raw = b"\x00\x00\x08\x03" + b"".join(int(d).to_bytes(4, "big") for d in images.shape) + images.tobytes()
    path = tmp_path / "x-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(raw))
    np.testing.assert_array_equal(tool.read_idx(str(path)), images)
    bad = tmp_path / "bad.gz"
    bad.write_bytes(gzip.compress(b"\x00\x00\x0d\x01" + raw[4:]))
    with pytest.raises(ValueError, match="IDX"):
        tool.read_idx(str(bad))
