"""lamina.viz: filter grids and training curves as PNG files; matplotlib stays optional."""
import os
import struct
import sys

import numpy as np
import pytest

import lamina
import lamina.nn as nn
import lamina.viz as viz

from conftest import _missing

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def png_size(path):
    """(width, height) from the IHDR chunk, after checking the PNG signature."""
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == PNG_MAGIC, f"{path} is not a PNG"
    assert head[12:16] == b"IHDR"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(autouse=True)
def _need_matplotlib(request):
    # The test of the missing-matplotlib message hides matplotlib itself, so it runs everywhere;
    # the drawing tests need it (the [viz] extra, installed by `make test`: under CI=true a missing
    # matplotlib fails them instead of skipping).
    if request.node.name.startswith("test_without_matplotlib"):
        return
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        _missing("matplotlib not installed (pip install 'lamina[viz]')")


def test_linear_filters_png(tmp_path):
    lamina.manual_seed(0)
    w = lamina.models.mlp((784, 30, 10)).fc1.weight
    out = viz.filters(w, path=tmp_path / "fc1.png", title="fc1")
    assert os.fspath(out) == os.fspath(tmp_path / "fc1.png")
    width, height = png_size(out)
    # 30 tiles -> 6 columns x 5 rows of 28x28 (+1 px separators), each weight drawn zoom x zoom
    # zoom = 640 // 173 = 3 screen pixels per weight, plus a 28 px title band
    assert (width, height) == (3 * (6 * 29 - 1), 3 * (5 * 29 - 1) + 28)
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]  # temp file renamed away


def test_tile_mosaic_layout_and_per_tile_scale():
    w = np.zeros((5, 16))
    w[0] = np.arange(16) - 8.0          # range [-8, 7] -> scaled by 8
    w[1, 3] = 0.001                     # a tiny filter still reaches +1 in its own tile
    w[2] = -3.0
    m = viz.tile_filters(w, ncols=3)
    assert m.shape == (2 * 5 - 1, 3 * 5 - 1)
    np.testing.assert_allclose(m[0:4, 0:4].ravel(), (np.arange(16) - 8.0) / 8.0)
    assert m[0, 5 + 3] == 1.0
    assert np.all(m[0:4, 10:14] == -1.0)
    assert np.isnan(m[4, :]).all() and np.isnan(m[:, 4]).all()   # separators
    assert np.all(m[5:9, 0:4] == 0.0)                              # an all-zero filter stays 0
    assert np.isnan(m[5:9, 10:14]).all()                           # the unused sixth cell


def test_conv_filters_first_channel_and_rgb(tmp_path):
    lamina.manual_seed(1)
    gray = nn.Conv2d(4, 6, 5).weight
    m = viz.tile_filters(gray)
    assert m.shape == (2 * 6 - 1, 3 * 6 - 1)
    w0 = gray.detach().numpy()[1, 0]
    np.testing.assert_allclose(m[0:5, 6:11], w0 / np.abs(w0).max(), rtol=1e-6)
    rgb = nn.Conv2d(3, 8, 3).weight
    m = viz.tile_filters(rgb, ncols=4)
    assert m.shape == (2 * 4 - 1, 4 * 4 - 1, 3)
    assert m.min() >= 0.0 and m.max() <= 1.0
    assert png_size(viz.filters(gray, path=tmp_path / "c1.png"))[0] > 50
    assert png_size(viz.filters(rgb, path=tmp_path / "rgb.png"))[0] > 50
    assert png_size(viz.filters(nn.Conv1d(2, 4, 7).weight, path=tmp_path / "c1d.png"))[0] > 50


def test_filters_explicit_shape_and_errors(tmp_path):
    w = np.random.default_rng(0).standard_normal((4, 12))
    assert viz.tile_filters(w, shape=(3, 4)).shape == (2 * 4 - 1, 2 * 5 - 1)
    assert viz.tile_filters(np.ones((2, 48)), shape=(3, 4, 4)).shape == (4, 9, 3)
    with pytest.raises(ValueError, match="shape"):
        viz.filters(w, path=tmp_path / "x.png")  # 12 is not a square
    with pytest.raises(ValueError, match="shape"):
        viz.tile_filters(w, shape=(5, 5))
    with pytest.raises(ValueError, match="weight"):
        viz.tile_filters(np.ones(5))
    with pytest.raises(ValueError, match="ncols"):
        viz.tile_filters(np.ones((4, 9)), ncols=0)
    with pytest.raises(ValueError, match="NaN"):
        viz.tile_filters(np.full((2, 4), np.nan))
    with pytest.raises(TypeError, match="weight"):
        viz.tile_filters(object())
    assert not (tmp_path / "x.png").exists()


HISTORY = [
    {"epoch": 1, "train_loss": 0.9, "test_loss": 0.5, "train_acc": 0.80, "test_acc": 0.88, "lr": 0.1},
    {"epoch": 2, "train_loss": 0.4, "test_loss": 0.3, "train_acc": 0.90, "test_acc": 0.93, "lr": 0.05},
    {"epoch": 3, "train_loss": 0.3, "test_loss": 0.25, "train_acc": 0.93, "test_acc": 0.95, "lr": 0.0},
]


def test_curves_list_of_dicts_and_dict_of_lists(tmp_path):
    a = viz.curves(HISTORY, path=tmp_path / "a.png")
    b = viz.curves({k: [h[k] for h in HISTORY] for k in HISTORY[0]}, path=tmp_path / "b.png")
    wa, ha = png_size(a)
    assert (wa, ha) == png_size(b) and wa > ha > 200  # two panels side by side
    only_loss = viz.curves({"loss": [3.0, 2.0, 1.5]}, path=tmp_path / "c.png")
    assert png_size(only_loss)[0] < wa  # one panel
    # overwriting an existing file works (atomic replace)
    assert viz.curves(HISTORY[:2], path=a) == a and png_size(a) == (wa, ha)


def test_curves_errors(tmp_path):
    with pytest.raises(ValueError, match="history"):
        viz.curves([], path=tmp_path / "x.png")
    with pytest.raises(ValueError, match="history"):
        viz.curves([{"lr": 0.1}], path=tmp_path / "x.png")
    with pytest.raises(ValueError, match="lengths"):
        viz.curves({"loss": [1, 2], "acc": [0.5]}, path=tmp_path / "x.png")
    with pytest.raises(TypeError, match="history"):
        viz.curves("loss", path=tmp_path / "x.png")
    with pytest.raises(TypeError, match="history"):
        viz.curves([1, 2], path=tmp_path / "x.png")
    assert not os.listdir(tmp_path)


def test_without_matplotlib_the_error_says_how_to_install(monkeypatch, tmp_path):
    for name in list(sys.modules):
        if name == "matplotlib" or name.startswith("matplotlib."):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # "import matplotlib" now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'lamina\[viz\]'"):
        viz.filters(np.ones((2, 4)), path=tmp_path / "f.png")
    with pytest.raises(ImportError, match=r"pip install 'lamina\[viz\]'"):
        viz.curves(HISTORY, path=tmp_path / "c.png")
    assert not os.listdir(tmp_path)
