"""Pictures of a network: first-layer filters and training curves (matplotlib, optional).

matplotlib is the ``viz`` extra (``pip install 'lamina[viz]'``); it is imported inside the
functions, so ``import lamina.viz`` works without it. Figures are drawn on the Agg canvas
(no display needed, no global pyplot state) and saved atomically: written to a temporary
file beside `path`, then renamed over it.

>>> import lamina, lamina.viz
>>> net = lamina.models.mlp()
>>> lamina.viz.filters(net.fc1.weight, path="/tmp/fc1.png")   # doctest: +SKIP
'/tmp/fc1.png'
"""
from __future__ import annotations

import io
import math
import os
from typing import Dict, List, Optional, Sequence, Union

import numpy as np

from .serialization import atomic_write_bytes

__all__ = ["filters", "curves", "tile_filters"]

_INSTALL_HINT = "pip install 'lamina[viz]'"


def _matplotlib():
    """(Figure, FigureCanvasAgg), or ImportError telling how to install matplotlib."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as e:
        raise ImportError(f"lamina.viz needs matplotlib, which is not installed: {_INSTALL_HINT}") from e
    return Figure, FigureCanvasAgg


def _to_numpy(weight, name="weight") -> np.ndarray:
    data = getattr(weight, "data", weight)  # Tensor / Parameter -> its ndarray
    if hasattr(data, "detach") and hasattr(data, "numpy"):  # a torch tensor, for convenience
        data = data.detach().numpy()
    try:
        arr = np.asarray(data, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name}: expected a Tensor or array of numbers, got {type(weight).__name__}") from None
    return arr


def _save(fig, canvas_cls, path) -> str:
    path = os.fspath(path)
    canvas_cls(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    # readers see the old file or the new one, never half of one
    atomic_write_bytes(path, buf.getvalue())
    return path


def tile_filters(weight, shape=None, ncols=None, pad=1):
    """The mosaic `filters` draws, as an array: (H, W) in [-1, 1] or (H, W, 3) RGB in [0, 1].

    Each tile is divided by its own largest |value| (a per-tile symmetric scale, so 0 is the
    middle colour in every tile); separators are NaN (drawn grey) or white for RGB.

    >>> w = np.zeros((4, 9)); w[0, 4] = 2.0; w[1, 0] = -1.0
    >>> m = tile_filters(w, ncols=2)
    >>> m.shape, float(np.nanmax(m)), float(np.nanmin(m))
    ((7, 7), 1.0, -1.0)
    """
    w = _to_numpy(weight)
    if w.ndim == 2:  # Linear weight (units, features): each row is one tile
        n, d = w.shape
        if shape is None:
            side = math.isqrt(d)
            if side * side != d:
                raise ValueError(f"shape: a Linear weight with {d} input features is not square; pass "
                                 f"shape=(height, width) (or (3, height, width) for RGB)")
            shape = (side, side)
        shape = tuple(int(s) for s in shape)
        if int(np.prod(shape)) != d or len(shape) not in (2, 3) or (len(shape) == 3 and shape[0] != 3):
            raise ValueError(f"shape: expected (height, width) or (3, height, width) with {d} elements "
                             f"in all, got {shape}")
        tiles = w.reshape((n,) + shape)
        rgb = len(shape) == 3
    elif w.ndim in (3, 4):  # conv weight (out, in, kh, kw) or conv1d (out, in, k)
        if shape is not None:
            raise ValueError(f"shape: only used for a 2-D (Linear) weight; got a {w.ndim}-D weight "
                             f"of shape {w.shape}")
        if w.ndim == 3:
            w = w[:, :, None, :]  # a 1-D kernel is a 1-pixel-high tile
        rgb = w.shape[1] == 3
        tiles = w if rgb else w[:, 0]  # RGB input: all three channels; else the first channel
    else:
        raise ValueError(f"weight: expected a 2-D Linear weight (units, features) or a conv weight "
                         f"(out, in, kh, kw), got shape {w.shape}")
    n = tiles.shape[0]
    if n == 0:
        raise ValueError("weight: has no filters (first dimension is 0)")
    if not np.all(np.isfinite(tiles)):
        raise ValueError("weight: contains NaN or infinite values")
    if ncols is None:
        ncols = int(math.ceil(math.sqrt(n)))
    if isinstance(ncols, bool) or not isinstance(ncols, (int, np.integer)) or ncols <= 0:
        raise ValueError(f"ncols: expected a positive int, got {ncols!r}")
    ncols = min(int(ncols), n)
    nrows = int(math.ceil(n / ncols))
    th, tw = tiles.shape[-2:]
    if rgb:
        tiles = np.moveaxis(tiles, 1, -1)  # (n, 3, h, w) -> (n, h, w, 3)
        mosaic = np.ones((nrows * (th + pad) - pad, ncols * (tw + pad) - pad, 3))
    else:
        mosaic = np.full((nrows * (th + pad) - pad, ncols * (tw + pad) - pad), np.nan)
    for i in range(n):
        t = tiles[i]
        scale = np.abs(t).max()
        t = t / scale if scale > 0 else t  # symmetric per-tile scale: 0 stays 0
        if rgb:
            t = 0.5 + 0.5 * t
        r, c = divmod(i, ncols)
        mosaic[r * (th + pad):r * (th + pad) + th, c * (tw + pad):c * (tw + pad) + tw] = t
    return mosaic


def filters(weight, shape=None, path: Union[str, os.PathLike] = "filters.png", ncols: Optional[int] = None,
            title: Optional[str] = None, cmap: str = "RdBu_r") -> str:
    """Save a grid image of first-layer weights; returns `path`.

    `weight`: a Linear weight (units, features), each row drawn as a `shape` image (inferred
    when features is a square number, e.g. 784 -> 28x28), or a conv weight (out, in, kh, kw)
    drawn per filter: in colour when in == 3, else its first input channel. Each tile has its
    own symmetric colour scale (`cmap`, red positive, blue negative by default).

    >>> import lamina, lamina.viz
    >>> w = lamina.nn.Conv2d(1, 6, 5).weight
    >>> lamina.viz.filters(w, path="/tmp/c1.png", title="C1")   # doctest: +SKIP
    '/tmp/c1.png'
    """
    mosaic = tile_filters(weight, shape=shape, ncols=ncols)
    Figure, Canvas = _matplotlib()
    import matplotlib
    h, w = mosaic.shape[:2]
    zoom = max(1, min(16, 640 // max(h, w)))  # whole screen pixels per weight, <= ~640 px wide
    dpi = 100
    title_px = 28 if title else 0
    fig = Figure(figsize=(w * zoom / dpi, (h * zoom + title_px) / dpi), dpi=dpi)
    ax = fig.add_axes((0, 0, 1, h * zoom / (h * zoom + title_px)))
    if mosaic.ndim == 3:
        ax.imshow(mosaic, interpolation="nearest")
    else:
        cm = matplotlib.colormaps[cmap].with_extremes(bad="0.75")  # separators (NaN) grey
        ax.imshow(mosaic, cmap=cm, vmin=-1.0, vmax=1.0, interpolation="nearest")
    ax.set_axis_off()
    if title:
        fig.text(0.5, 1 - 0.5 * title_px / (h * zoom + title_px), title, ha="center", va="center",
                 fontsize=10)
    return _save(fig, Canvas, path)


def _columns(history) -> Dict[str, List[float]]:
    """A history (list of per-epoch dicts, or dict of per-epoch lists) as numeric columns."""
    if isinstance(history, dict):
        cols = {}
        lengths = set()
        for k, v in history.items():
            if isinstance(v, (list, tuple, np.ndarray)):
                cols[str(k)] = list(v)
                lengths.add(len(v))
        if len(lengths) > 1:
            raise ValueError(f"history: the lists have different lengths {sorted(lengths)}; expected "
                             f"one value per epoch in each")
    elif isinstance(history, (list, tuple)):
        keys: List[str] = []
        for i, rec in enumerate(history):
            if not isinstance(rec, dict):
                raise TypeError(f"history: expected a list of dicts (one per epoch) or a dict of lists, "
                                f"got a list holding {type(rec).__name__} at index {i}")
            keys += [k for k in rec if k not in keys]
        cols = {str(k): [rec.get(k, float("nan")) for rec in history] for k in keys}
    else:
        raise TypeError(f"history: expected a list of dicts (one per epoch) or a dict of lists, "
                        f"got {type(history).__name__}")
    numeric = {}
    for k, v in cols.items():
        try:
            numeric[k] = [float("nan") if x is None else float(x) for x in v]
        except (TypeError, ValueError):
            continue  # a text column (e.g. a timestamp) is not plotted
    return numeric


def curves(history: Union[Sequence[dict], Dict[str, Sequence[float]]],
           path: Union[str, os.PathLike] = "curves.png", title: Optional[str] = None) -> str:
    """Save loss (left) and accuracy (right) per epoch; returns `path`.

    `history` is what `lamina.train.fit` returns (a list of per-epoch dicts) or a dict of
    per-epoch lists. Keys containing "loss" go to the left panel, keys containing "acc" to
    the right one (shown in %, when all values are fractions in [0, 1]).

    >>> import lamina.viz
    >>> h = [{"train_loss": 0.9, "test_acc": 0.90}, {"train_loss": 0.4, "test_acc": 0.95}]
    >>> lamina.viz.curves(h, path="/tmp/curves.png")   # doctest: +SKIP
    '/tmp/curves.png'
    """
    cols = _columns(history)
    n = max((len(v) for v in cols.values()), default=0)
    loss_keys = [k for k in cols if "loss" in k.lower()]
    acc_keys = [k for k in cols if "acc" in k.lower()]
    if n == 0 or not (loss_keys or acc_keys):
        raise ValueError(f"history: expected at least one epoch with a '*loss*' or '*acc*' entry, got "
                         f"{n} epochs with keys {sorted(cols)}")
    Figure, Canvas = _matplotlib()
    from matplotlib.ticker import MaxNLocator
    epochs = cols.get("epoch") or list(range(1, n + 1))
    panels = [(keys, label) for keys, label in ((loss_keys, "loss"), (acc_keys, "accuracy")) if keys]
    fig = Figure(figsize=(5.0 * len(panels), 3.6), dpi=100)
    for i, (keys, label) in enumerate(panels):
        ax = fig.add_subplot(1, len(panels), i + 1)
        values = [v for k in keys for v in cols[k] if not math.isnan(v)]
        percent = label == "accuracy" and values and all(0.0 <= v <= 1.0 for v in values)
        for k in keys:
            ys = [100.0 * v for v in cols[k]] if percent else cols[k]
            ax.plot(epochs, ys, marker="o", markersize=3, label=k)
        ax.set_xlabel("epoch")
        if len(epochs) <= 20:
            ax.set_xticks(epochs)  # one tick per epoch
        else:
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if len(epochs) == 1:
            ax.set_xlim(epochs[0] - 0.5, epochs[0] + 0.5)
        ax.set_ylabel(label + (" (%)" if percent else ""))
        ax.grid(True, alpha=0.3)
        ax.legend()
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _save(fig, Canvas, path)
