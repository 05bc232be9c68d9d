"""Sampling images at given points: F.affine_grid and F.grid_sample, PyTorch's functions (the
spatial transformer networks of Jaderberg et al. 2015; warping by a flow field).

grid_sample reads input (N, C, H, W) at grid (N, Ho, Wo, 2) points given as normalized (x, y)
in [-1, 1] (the corner pixels' centres with align_corners=True, their outer edges without),
bilinearly or from the nearest pixel, with PyTorch's padding modes (zeros, border, reflection)
and coordinate rules. Its backward gives the gradient of the input (the bilinear weights
scattered back) and of the grid (the weights' slopes times the pixel values). affine_grid is a
batched matmul of a fixed base grid by theta, so its gradient comes from that op.

>>> import lamina, lamina.nn.functional as F
>>> identity = lamina.tensor([[[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]])
>>> img = lamina.arange(4.0).reshape(1, 1, 2, 2)
>>> F.grid_sample(img, F.affine_grid(identity, (1, 1, 2, 2), align_corners=False), align_corners=False).tolist()
[[[[0.0, 1.0], [2.0, 3.0]]]]
"""
from __future__ import annotations

import warnings

import numpy as np

from ..tensor import Function, Tensor, float32, float64
from .registry import BadSample, Sample, register

__all__ = ["affine_grid", "grid_sample"]
_F = (float32, float64)


def _base_coords(n, align_corners):
    """The n normalized coordinates of pixel centres along one axis."""
    if n <= 1:
        return np.zeros(max(n, 0))
    c = np.linspace(-1.0, 1.0, n)
    return c if align_corners else c * (n - 1) / n


def affine_grid(theta, size, align_corners=None):
    """Sampling grid (N, H, W, 2) of the affine maps theta (N, 2, 3) for an output of `size`
    (N, C, H, W), PyTorch's ``F.affine_grid`` (4-D sizes)."""
    if align_corners is None:
        align_corners = False
    if not isinstance(theta, Tensor):
        raise TypeError(f"affine_grid: theta must be a lamina Tensor, got {type(theta).__name__}")
    if theta.dtype not in _F:
        raise ValueError(f"Expected theta to have floating point type, but got {theta.dtype}")
    size = tuple(int(s) for s in size)
    if len(size) != 4:
        raise NotImplementedError(f"affine_grid: only 4-D sizes (N, C, H, W) are supported by lamina, got {size}")
    N, _, H, W = size
    if theta.ndim != 3 or tuple(theta.shape[1:]) != (2, 3):
        raise ValueError(f"Expected a batch of 2D affine matrices of shape Nx2x3 for size {list(size)}. "
                         f"Got {list(theta.shape)}.")
    if theta.shape[0] != N:
        raise ValueError(f"affine_grid: theta holds {theta.shape[0]} matrices for a batch of {N}")
    if min(size[2:]) <= 0:
        raise ValueError(f"Expected non-zero, positive output size. Got {list(size)}")
    xs, ys = _base_coords(W, align_corners), _base_coords(H, align_corners)
    base = np.stack([np.broadcast_to(xs[None, :], (H, W)), np.broadcast_to(ys[:, None], (H, W)),
                     np.ones((H, W))], axis=-1).reshape(1, H * W, 3).astype(theta.dtype)
    base = Tensor._wrap(np.ascontiguousarray(np.broadcast_to(base, (N, H * W, 3))))
    return (base @ theta.transpose(1, 2)).reshape(N, H, W, 2)


# ---------------------------------------------------------------------------- grid_sample
def _reflect(x, twice_low, twice_high):
    """PyTorch's reflect_coordinates and the derivative of its result with respect to x."""
    if twice_low == twice_high:
        return np.zeros_like(x), np.zeros_like(x)
    lo = twice_low / 2
    span = (twice_high - twice_low) / 2
    d = x - lo
    sign = np.where(d < 0, -1.0, 1.0)
    d = np.abs(d)
    extra = np.fmod(d, span)
    flips = np.floor(d / span)
    even = flips % 2 == 0
    return np.where(even, extra + lo, span - extra + lo), np.where(even, sign, -sign)


def _source(coord, size, padding_mode, align_corners):
    """Pixel coordinate of each normalized grid coordinate and d(pixel)/d(normalized)."""
    if align_corners:
        x = (coord + 1) / 2 * (size - 1)
        g = np.full_like(coord, (size - 1) / 2)
    else:
        x = ((coord + 1) * size - 1) / 2
        g = np.full_like(coord, size / 2)
    if padding_mode == "border":
        inside = (x > 0) & (x < size - 1)
        x, g = np.clip(x, 0, size - 1), g * inside
    elif padding_mode == "reflection":
        x, r = _reflect(x, 0, 2 * (size - 1)) if align_corners else _reflect(x, -1, 2 * size - 1)
        g = g * r
        inside = (x > 0) & (x < size - 1)
        x, g = np.clip(x, 0, size - 1), g * inside
    return x, g


def _taps(x, y, H, W):
    """The four bilinear corners: (yi, xi, weight, dweight/dx, dweight/dy, in-bounds mask)."""
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    out = []
    for dy_, wy, dwy in ((0, 1 - fy, -1.0), (1, fy, 1.0)):
        for dx_, wx, dwx in ((0, 1 - fx, -1.0), (1, fx, 1.0)):
            xi, yi = x0 + dx_, y0 + dy_
            ok = (xi >= 0) & (xi <= W - 1) & (yi >= 0) & (yi <= H - 1)
            out.append((np.clip(yi, 0, H - 1).astype(np.int64), np.clip(xi, 0, W - 1).astype(np.int64),
                        wy * wx, dwx * wy, dwy * wx, ok))
    return out


def _gather(img, yi, xi):
    """img (N, C, H, W) at per-batch points (N, P): (N, C, P)."""
    N = img.shape[0]
    return img[np.arange(N)[:, None], :, yi, xi].transpose(0, 2, 1)


def _grid_samples(dt):
    rng = np.random.default_rng(81)
    x = rng.standard_normal((2, 3, 5, 4)).astype(dt)
    # points off the pixel grid and the half-pixel boundaries (bilinear is not differentiable there)
    grid = (rng.uniform(-1.3, 1.3, (2, 3, 4, 2)) + 0.0123).astype(dt)
    return [Sample((x, grid), {"align_corners": False}, name="zeros"),
            Sample((x, grid), {"padding_mode": "border", "align_corners": True}, name="border"),
            Sample((x, grid), {"padding_mode": "reflection", "align_corners": False}, name="reflection"),
            Sample((x, grid), {"mode": "nearest", "align_corners": False}, name="nearest", grad=False)]


@register("grid_sample", dtypes=_F, call=lambda x, g, **kw: grid_sample(x, g, **kw), samples=_grid_samples,
          bad_samples=lambda: [BadSample((np.ones((1, 1, 2, 2), np.float32), np.ones((1, 2, 2, 3), np.float32)),
                                         error=ValueError, match="grid")],
          torch=lambda torch, x, g, **kw: torch.nn.functional.grid_sample(x, g, **kw))
class GridSample(Function):
    @staticmethod
    def forward(ctx, x, grid, mode, padding_mode, align_corners):
        N, C, H, W = x.shape
        Ho, Wo = grid.shape[1:3]
        g = grid.reshape(N, Ho * Wo, 2).astype(np.float64)
        ix, gx = _source(g[..., 0], W, padding_mode, align_corners)
        iy, gy = _source(g[..., 1], H, padding_mode, align_corners)
        ctx.args = (x.shape, grid.shape, mode, ix, iy, gx, gy)
        ctx.save_for_backward(x)
        if mode == "nearest":
            xr, yr = np.rint(ix), np.rint(iy)       # round half to even, as PyTorch's nearbyint
            ok = (xr >= 0) & (xr <= W - 1) & (yr >= 0) & (yr <= H - 1)
            v = _gather(x, np.clip(yr, 0, H - 1).astype(np.int64), np.clip(xr, 0, W - 1).astype(np.int64))
            y = v * ok[:, None, :]
        else:
            y = np.zeros((N, C, Ho * Wo), np.float64)
            for yi, xi, w, _, _, ok in _taps(ix, iy, H, W):
                y += _gather(x, yi, xi) * (w * ok)[:, None, :]
        return np.ascontiguousarray(y.reshape(N, C, Ho, Wo), dtype=x.dtype)

    @staticmethod
    def backward(ctx, dy):
        (x,) = ctx.saved_tensors
        shape, gshape, mode, ix, iy, gx, gy = ctx.args
        N, C, H, W = shape
        P = gshape[1] * gshape[2]
        d = dy.reshape(N, C, P).astype(np.float64)
        dx = np.zeros((N, C, H * W), np.float64) if ctx.needs_input_grad[0] else None
        dgrid = np.zeros((N, P, 2), np.float64)
        n_idx = np.arange(N)[:, None]
        if mode == "nearest":
            if dx is not None:
                xr, yr = np.rint(ix), np.rint(iy)
                ok = (xr >= 0) & (xr <= W - 1) & (yr >= 0) & (yr <= H - 1)
                flat = (np.clip(yr, 0, H - 1) * W + np.clip(xr, 0, W - 1)).astype(np.int64)
                for n in range(N):
                    np.add.at(dx[n].T, flat[n][ok[n]], d[n][:, ok[n]].T)
        else:
            for yi, xi, w, dwx, dwy, ok in _taps(ix, iy, H, W):
                if dx is not None:
                    flat = yi * W + xi
                    for n in range(N):
                        np.add.at(dx[n].T, flat[n][ok[n]], (d[n][:, ok[n]] * w[n][ok[n]]).T)
                if ctx.needs_input_grad[1]:
                    v = x[n_idx, :, yi, xi].transpose(0, 2, 1).astype(np.float64) * ok[:, None, :]
                    s = (d * v).sum(1)                                       # (N, P)
                    dgrid[..., 0] += s * dwx
                    dgrid[..., 1] += s * dwy
            dgrid[..., 0] *= gx
            dgrid[..., 1] *= gy
        return (None if dx is None else dx.reshape(shape).astype(x.dtype),
                dgrid.reshape(gshape).astype(x.dtype) if ctx.needs_input_grad[1] else None, None, None, None)




def grid_sample(input, grid, mode="bilinear", padding_mode="zeros", align_corners=None):
    """input (N, C, H, W) read at grid (N, Ho, Wo, 2) normalized (x, y) points: (N, C, Ho, Wo),
    PyTorch's ``F.grid_sample`` (4-D; modes bilinear and nearest; padding zeros, border,
    reflection)."""
    for name, t in (("input", input), ("grid", grid)):
        if not isinstance(t, Tensor):
            raise TypeError(f"grid_sample: {name} must be a lamina Tensor, got {type(t).__name__}")
    if mode not in ("bilinear", "nearest", "bicubic"):
        raise ValueError(f"nn.functional.grid_sample(): expected mode to be 'bilinear', 'nearest' or 'bicubic', "
                         f"but got: '{mode}'")
    if mode == "bicubic":
        raise NotImplementedError("grid_sample: mode='bicubic' is not supported by lamina")
    if padding_mode not in ("zeros", "border", "reflection"):
        raise ValueError("nn.functional.grid_sample(): expected padding_mode to be 'zeros', 'border', or "
                         f"'reflection', but got: '{padding_mode}'")
    if align_corners is None:
        warnings.warn("Default grid_sample and affine_grid behavior has changed to align_corners=False since 1.3.0. "
                      "Please specify align_corners=True if the old behavior is desired. See the documentation of "
                      "grid_sample for details.", UserWarning, stacklevel=2)
        align_corners = False
    if input.ndim != 4:
        raise NotImplementedError(f"grid_sample: only 4-D input (N, C, H, W) is supported by lamina, "
                                  f"got shape {tuple(input.shape)}")
    if grid.ndim != 4 or grid.shape[-1] != 2 or grid.shape[0] != input.shape[0]:
        raise ValueError(f"grid_sample(): expected grid of shape (N, H_out, W_out, 2) with N = {input.shape[0]}, "
                         f"got grid shape {tuple(grid.shape)}")
    if input.dtype not in _F or grid.dtype != input.dtype:
        raise TypeError(f"grid_sample(): expected input and grid of the same float dtype, got {input.dtype} and "
                        f"{grid.dtype}")
    return GridSample.apply(input, grid, mode, padding_mode, bool(align_corners))
