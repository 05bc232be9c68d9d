"""Batch augmentation for `lamina train --augment`, and a loader wrapper that prepares the next
batches in a background thread while the current step runs.

Augmenting a whole batch at once (one pad, one gather of every crop window) costs a few NumPy
calls per batch instead of a few Python calls per image, and NumPy releases the GIL for the
copies, so the prefetch thread overlaps them with the training step.

>>> import numpy as np
>>> x = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
>>> out = random_crop_flip(x, np.random.default_rng(0), padding=1, flip=True)
>>> out.shape, out.dtype
((2, 1, 4, 4), dtype('float32'))
"""
from __future__ import annotations

import queue
import threading

import numpy as np

__all__ = ["random_crop_flip", "AugmentedLoader", "PrefetchLoader"]


def random_crop_flip(x: np.ndarray, rng: np.random.Generator, padding: int = 2,
                     flip: bool = False) -> np.ndarray:
    """Each image of the (N, C, H, W) batch `x`: zero-pad by `padding`, crop a random H x W
    window (as RandomCrop(H, padding)), and mirror left-right with probability 1/2 if `flip`."""
    if x.ndim != 4:
        raise ValueError(f"x: expected a batch of shape (N, C, H, W), got {x.shape}")
    n, _, h, w = x.shape
    padded = np.pad(x, ((0, 0), (0, 0), (padding, padding), (padding, padding)))
    top = rng.integers(0, 2 * padding + 1, size=n)
    left = rng.integers(0, 2 * padding + 1, size=n)
    rows = top[:, None] + np.arange(h)[None, :]                     # (N, H) source rows
    cols = left[:, None] + np.arange(w)[None, :]                    # (N, W) source columns
    if flip:
        mirrored = rng.random(n) < 0.5
        cols = np.where(mirrored[:, None], cols[:, ::-1], cols)
    batch = np.arange(n)[:, None, None, None]
    channel = np.arange(x.shape[1])[None, :, None, None]
    return padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]


class _LoaderWrapper:
    """A loader around `self.loader`: same length, and its `epoch` (which seeds shuffling) passes through."""

    @property
    def epoch(self):
        return getattr(self.loader, "epoch", 0)

    @epoch.setter
    def epoch(self, value):
        self.loader.epoch = value

    def __len__(self):
        return len(self.loader)


class AugmentedLoader(_LoaderWrapper):
    """Wraps a loader of (x, y) batches: x goes through `random_crop_flip`, drawn from a
    generator seeded by (seed, epoch), so a resumed run augments as an unbroken one does."""

    def __init__(self, loader, seed: int, padding: int = 2, flip: bool = False):
        self.loader = loader
        self.seed = int(seed)
        self.padding = int(padding)
        self.flip = bool(flip)

    def __iter__(self):
        from .tensor import Tensor
        rng = np.random.default_rng([self.seed, int(self.epoch), 0xA6])
        for x, y in self.loader:
            yield Tensor._wrap(random_crop_flip(x._data, rng, self.padding, self.flip)), y


class PrefetchLoader(_LoaderWrapper):
    """Iterates `loader` in a background thread, `depth` batches ahead, yielding in order.

    Exceptions in the thread are re-raised in the consumer; abandoning the iteration (break,
    KeyboardInterrupt) stops the thread.
    """

    _END = object()

    def __init__(self, loader, depth: int = 2):
        if depth < 1:
            raise ValueError(f"depth: expected a positive int, got {depth}")
        self.loader = loader
        self.depth = int(depth)

    def __iter__(self):
        ready: queue.Queue = queue.Queue(maxsize=self.depth)
        stop = threading.Event()

        def produce():
            try:
                for batch in self.loader:
                    while not stop.is_set():
                        try:
                            ready.put(batch, timeout=0.1)
                            break
                        except queue.Full:
                            pass
                    if stop.is_set():
                        return
                ready.put(self._END)
            except BaseException as e:  # handed to the consumer, raised there
                ready.put(e)

        thread = threading.Thread(target=produce, name="lamina-prefetch", daemon=True)
        thread.start()
        try:
            while True:
                item = ready.get()
                if item is self._END:
                    return
                if isinstance(item, BaseException):
                    raise item
                yield item
        finally:
            stop.set()
            thread.join(timeout=5.0)
