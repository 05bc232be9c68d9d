"""Image transforms with torchvision's names, for `from lamina import transforms`.

An image is what a dataset hands its transform: a NumPy array, uint8 (H, W) or (H, W, C) (where
torchvision passes a PIL image), or a Tensor (..., H, W). Geometric transforms work on either and
return the same kind; `ToTensor` turns an array into a float32 (C, H, W) Tensor in [0, 1].
Random transforms draw from lamina's generator, so `lamina.manual_seed` fixes them (each
DataLoader worker is seeded on its own, as in PyTorch).

>>> import numpy as np, lamina
>>> from lamina import transforms
>>> t = transforms.Compose([transforms.ToTensor(), transforms.Normalize((0.1307,), (0.3081,))])
>>> x = t(np.zeros((28, 28), np.uint8))
>>> x.shape, x.dtype, round(float(x[0, 0, 0]), 4)
((1, 28, 28), dtype('float32'), -0.4242)
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from . import random as _random
from .tensor import Tensor

__all__ = ["Compose", "ToTensor", "Normalize", "Lambda", "RandomCrop", "RandomHorizontalFlip",
           "RandomAffine"]


def _rng() -> np.random.Generator:
    return _random.default_generator()   # looked up per call: manual_seed replaces it


def _planes(img):
    """(array shaped (..., H, W), function turning such an array back into img's kind)."""
    if isinstance(img, Tensor):
        if img.ndim < 2:
            raise ValueError(f"img: expected a tensor of shape (..., H, W), got {tuple(img.shape)}")
        return img._data, lambda a: Tensor._wrap(np.ascontiguousarray(a))
    if isinstance(img, np.ndarray):
        if img.ndim == 2:
            return img, lambda a: np.ascontiguousarray(a)
        if img.ndim == 3:              # (H, W, C), as PIL and torchvision's ToTensor read it
            return img.transpose(2, 0, 1), lambda a: np.ascontiguousarray(a.transpose(1, 2, 0))
        raise ValueError(f"img: expected an (H, W) or (H, W, C) array, got shape {img.shape}")
    raise TypeError(f"img: expected a NumPy array or a lamina Tensor, got {type(img).__name__}")


def _pair(value, name):
    if isinstance(value, numbers.Number):
        return int(value), int(value)
    if isinstance(value, (tuple, list)) and len(value) == 1:
        return int(value[0]), int(value[0])
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return int(value[0]), int(value[1])
    raise ValueError(f"{name}: expected an int or a sequence of 1 or 2 ints, got {value!r}")


class Compose:
    """Apply transforms one after the other."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def __call__(self, img):
        for t in self.transforms:
            img = t(img)
        return img

    def __repr__(self):
        inner = "".join(f"\n    {t!r}" for t in self.transforms)
        return f"{type(self).__name__}({inner}\n)"


class ToTensor:
    """uint8 (H, W) or (H, W, C) array -> float32 (C, H, W) Tensor divided by 255; other arrays
    are converted without scaling; a Tensor passes through unchanged."""

    def __call__(self, pic):
        if isinstance(pic, Tensor):
            return pic
        if not isinstance(pic, np.ndarray):
            raise TypeError(f"pic: expected a NumPy array or a lamina Tensor, got {type(pic).__name__}")
        if pic.ndim not in (2, 3):
            raise ValueError(f"pic: expected an (H, W) or (H, W, C) array, got shape {pic.shape}")
        chw = pic[None] if pic.ndim == 2 else pic.transpose(2, 0, 1)
        if pic.dtype == np.uint8:
            out = chw.astype(np.float32)
            out /= np.float32(255.0)
        elif pic.dtype in (np.float32, np.float64):
            out = chw.copy()
        else:
            out = chw.astype(np.float32)
        return Tensor._wrap(np.ascontiguousarray(out))

    def __repr__(self):
        return "ToTensor()"


class Normalize:
    """(x - mean[c]) / std[c] per channel of a float (..., C, H, W) Tensor (differentiable)."""

    def __init__(self, mean, std, inplace=False):
        self.mean = tuple(float(m) for m in np.atleast_1d(mean))
        self.std = tuple(float(s) for s in np.atleast_1d(std))
        if any(s == 0 for s in self.std):
            raise ValueError(f"std evaluated to zero after conversion to float, leading to "
                             f"division by zero: std={self.std}")
        self.inplace = inplace

    def __call__(self, tensor):
        if not isinstance(tensor, Tensor):
            raise TypeError(f"tensor: Normalize expects a lamina Tensor (apply ToTensor first), "
                            f"got {type(tensor).__name__}")
        if tensor.dtype.kind != "f":
            raise TypeError(f"tensor: Normalize expects a floating-point tensor, got {tensor.dtype}")
        if tensor.ndim < 3:
            raise ValueError(f"tensor: expected shape (..., C, H, W), got {tuple(tensor.shape)}")
        channels = tensor.shape[-3]
        if len(self.mean) not in (1, channels) or len(self.std) not in (1, channels):
            raise ValueError(f"mean and std: expected 1 or {channels} values (the tensor's channels), "
                             f"got {len(self.mean)} and {len(self.std)}")
        mean = np.asarray(self.mean, dtype=tensor.dtype).reshape(-1, 1, 1)
        std = np.asarray(self.std, dtype=tensor.dtype).reshape(-1, 1, 1)
        if self.inplace and not tensor.requires_grad:
            tensor._data -= mean
            tensor._data /= std
            return tensor
        return (tensor - Tensor._wrap(mean)) / Tensor._wrap(std)

    def __repr__(self):
        return f"Normalize(mean={self.mean}, std={self.std})"


class Lambda:
    """Apply a user function."""

    def __init__(self, lambd):
        if not callable(lambd):
            raise TypeError(f"lambd: expected a callable, got {type(lambd).__name__}")
        self.lambd = lambd

    def __call__(self, img):
        return self.lambd(img)


def _padding4(padding):
    """torchvision's padding forms -> (left, top, right, bottom)."""
    if isinstance(padding, numbers.Number):
        p = int(padding)
        return p, p, p, p
    padding = [int(p) for p in padding]
    if len(padding) == 2:
        return padding[0], padding[1], padding[0], padding[1]
    if len(padding) == 4:
        return tuple(padding)
    raise ValueError(f"padding: expected an int or a sequence of 2 or 4 ints, got {padding!r}")


class RandomCrop:
    """Crop a random size=(h, w) window, after padding the borders by `padding` (an int, (lr, tb)
    or (l, t, r, b)) with `fill` (or 'edge' / 'reflect' / 'symmetric' padding_mode)."""

    def __init__(self, size, padding=None, pad_if_needed=False, fill=0, padding_mode="constant"):
        self.size = _pair(size, "size")
        self.padding = None if padding is None else _padding4(padding)
        if self.padding is not None and min(self.padding) < 0:
            raise ValueError(f"padding: expected non-negative values, got {padding!r}")
        if padding_mode not in ("constant", "edge", "reflect", "symmetric"):
            raise ValueError(f"padding_mode: expected constant, edge, reflect or symmetric, got {padding_mode!r}")
        self.pad_if_needed = pad_if_needed
        self.fill = fill
        self.padding_mode = padding_mode

    def _pad(self, a, left, top, right, bottom):
        widths = [(0, 0)] * (a.ndim - 2) + [(top, bottom), (left, right)]
        if self.padding_mode == "constant":
            return np.pad(a, widths, mode="constant", constant_values=self.fill)
        return np.pad(a, widths, mode=self.padding_mode)

    def __call__(self, img):
        a, back = _planes(img)
        if self.padding is not None:
            a = self._pad(a, *self.padding)
        th, tw = self.size
        h, w = a.shape[-2:]
        if self.pad_if_needed and h < th:
            a = self._pad(a, 0, th - h, 0, th - h)
        if self.pad_if_needed and w < tw:
            a = self._pad(a, tw - w, 0, tw - w, 0)
        h, w = a.shape[-2:]
        if h < th or w < tw:
            raise ValueError(f"Required crop size {(th, tw)} is larger than input image size {(h, w)}")
        rng = _rng()
        i = int(rng.integers(0, h - th + 1))
        j = int(rng.integers(0, w - tw + 1))
        return back(a[..., i:i + th, j:j + tw])

    def __repr__(self):
        return f"RandomCrop(size={self.size}, padding={self.padding})"


class RandomHorizontalFlip:
    """Mirror left-right with probability p."""

    def __init__(self, p=0.5):
        if not 0.0 <= float(p) <= 1.0:
            raise ValueError(f"p: expected a probability in [0, 1], got {p}")
        self.p = float(p)

    def __call__(self, img):
        if _rng().random() < self.p:
            a, back = _planes(img)
            return back(a[..., ::-1])
        return img

    def __repr__(self):
        return f"RandomHorizontalFlip(p={self.p})"


def _range(value, name, center=0.0):
    if isinstance(value, numbers.Number):
        if value < 0:
            raise ValueError(f"{name}: if it is a single number, it must be non-negative, got {value}")
        return center - float(value), center + float(value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return float(value[0]), float(value[1])
    raise ValueError(f"{name}: expected a number or a sequence of 2 numbers, got {value!r}")


class RandomAffine:
    """A random rotation (degrees), translation (fractions of width and height), scale and shear
    about the image centre; pixels are sampled by nearest neighbour (torchvision's default), and
    those that fall outside become `fill`."""

    def __init__(self, degrees, translate=None, scale=None, shear=None, interpolation=None,
                 fill=0, center=None):
        self.degrees = _range(degrees, "degrees")
        if translate is not None:
            if len(translate) != 2 or not all(0.0 <= float(t) <= 1.0 for t in translate):
                raise ValueError(f"translate: expected two fractions in [0, 1], got {translate!r}")
            translate = (float(translate[0]), float(translate[1]))
        self.translate = translate
        if scale is not None:
            if len(scale) != 2 or min(scale) <= 0:
                raise ValueError(f"scale: expected two positive values, got {scale!r}")
            scale = (float(scale[0]), float(scale[1]))
        self.scale = scale
        self.shear = None if shear is None else _range(shear, "shear")
        self.fill = fill
        self.center = center

    def _params(self, h, w):
        rng = _rng()
        angle = float(rng.uniform(*self.degrees))
        tx = ty = 0
        if self.translate is not None:
            max_dx, max_dy = self.translate[0] * w, self.translate[1] * h
            tx = int(round(rng.uniform(-max_dx, max_dx)))
            ty = int(round(rng.uniform(-max_dy, max_dy)))
        s = float(rng.uniform(*self.scale)) if self.scale is not None else 1.0
        sh = float(rng.uniform(*self.shear)) if self.shear is not None else 0.0
        return angle, (tx, ty), s, sh

    def __call__(self, img):
        a, back = _planes(img)
        h, w = a.shape[-2:]
        angle, (tx, ty), s, sh = self._params(h, w)
        cx, cy = ((w - 1) * 0.5, (h - 1) * 0.5) if self.center is None else self.center
        # Forward map: p' = c + t + S * R(angle) * Shear * (p - c); sample each output pixel
        # at the inverse image of its centre. Positive angle turns counter-clockwise on screen.
        rad, shr = math.radians(angle), math.radians(sh)
        rot = np.array([[math.cos(rad), math.sin(rad)], [-math.sin(rad), math.cos(rad)]])
        shear = np.array([[1.0, -math.tan(shr)], [0.0, 1.0]])
        inverse = np.linalg.inv(s * rot @ shear)
        ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
        dx, dy = xs - cx - tx, ys - cy - ty
        src_x = inverse[0, 0] * dx + inverse[0, 1] * dy + cx
        src_y = inverse[1, 0] * dx + inverse[1, 1] * dy + cy
        sx, sy = np.rint(src_x).astype(np.int64), np.rint(src_y).astype(np.int64)
        inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
        out = np.full_like(a, self.fill)
        out[..., inside] = a[..., sy[inside], sx[inside]]
        return back(out)

    def __repr__(self):
        return (f"RandomAffine(degrees={self.degrees}, translate={self.translate}, "
                f"scale={self.scale}, shear={self.shear})")
