"""Variable-length sequences for the recurrent layers, with PyTorch's names and layouts:
PackedSequence, pack_padded_sequence, pad_packed_sequence, pad_sequence, pack_sequence,
unpad_sequence and unpack_sequence.

A PackedSequence holds the steps of B sequences sorted by decreasing length, time-major:
`data` is (sum of lengths, *) with step t's `batch_sizes[t]` rows (the sequences still running
at t) after step t-1's; `sorted_indices[i]` is the original batch index of sorted row i and
`unsorted_indices` its inverse (None when the batch was already sorted).

>>> import lamina
>>> from lamina.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
>>> x = lamina.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]])          # 2 sequences, lengths 3 and 2
>>> p = pack_padded_sequence(x, [3, 2], batch_first=True)
>>> p.data.tolist(), p.batch_sizes.tolist()
([1.0, 4.0, 2.0, 5.0, 3.0], [2, 2, 1])
>>> y, lengths = pad_packed_sequence(p, batch_first=True)
>>> y.tolist(), lengths.tolist()
([[1.0, 2.0, 3.0], [4.0, 5.0, 0.0]], [3, 2])
"""
from __future__ import annotations

from collections import namedtuple

import numpy as np

from ...ops.shape import cat, stack
from ...tensor import Tensor

__all__ = ["PackedSequence", "pack_padded_sequence", "pad_packed_sequence", "pad_sequence",
           "pack_sequence", "unpad_sequence", "unpack_sequence", "invert_permutation"]


def _int64(a):
    return Tensor._wrap(np.ascontiguousarray(a, dtype=np.int64))


def invert_permutation(permutation):
    """The inverse of an index permutation (None stays None)."""
    if permutation is None:
        return None
    p = np.asarray(permutation._data if isinstance(permutation, Tensor) else permutation, dtype=np.int64)
    inv = np.empty_like(p)
    inv[p] = np.arange(p.size, dtype=np.int64)
    return _int64(inv)


class PackedSequence(namedtuple("PackedSequence", ["data", "batch_sizes", "sorted_indices", "unsorted_indices"])):
    """(data, batch_sizes, sorted_indices, unsorted_indices), as PyTorch's: made by
    pack_padded_sequence / pack_sequence and taken by RNN, LSTM and GRU."""

    def __new__(cls, data, batch_sizes=None, sorted_indices=None, unsorted_indices=None):
        if batch_sizes is None:
            raise TypeError("PackedSequence: batch_sizes is required (build one with pack_padded_sequence)")
        if unsorted_indices is None:
            unsorted_indices = invert_permutation(sorted_indices)
        return super().__new__(cls, data, batch_sizes, sorted_indices, unsorted_indices)

    def to(self, *args, **kwargs):
        data = self.data.to(*args, **kwargs)
        return self if data is self.data else type(self)(data, self.batch_sizes, self.sorted_indices,
                                                          self.unsorted_indices)

    def cpu(self):
        return self

    def double(self):
        return self.to(np.float64)

    def float(self):
        return self.to(np.float32)

    @property
    def is_cuda(self):
        return False

    def is_pinned(self):
        return False


def _lengths_array(lengths, batch):
    if isinstance(lengths, Tensor):
        if lengths.ndim != 1:
            raise RuntimeError(f"lengths: expected a 1-D tensor, got {lengths.ndim}-D")
        arr = lengths._data
    else:
        arr = np.asarray(lengths)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu"):
        if arr.ndim == 1 and arr.dtype.kind == "f" and np.all(arr == np.floor(arr)):
            arr = arr.astype(np.int64)
        else:
            raise TypeError(f"lengths: expected a 1-D sequence of integers, got {arr.dtype} of shape {arr.shape}")
    arr = arr.astype(np.int64)
    if arr.size != batch:
        raise ValueError(f"Expected `len(lengths)` to be equal to batch_size, but got {arr.size} "
                         f"(batch_size={batch})")
    return arr


def pack_padded_sequence(input, lengths, batch_first=False, enforce_sorted=True):
    """Pack a padded batch (T, B, *) ((B, T, *) with batch_first) of sequences of the given
    lengths. With enforce_sorted the lengths must be decreasing; otherwise the batch is sorted
    and the permutation kept, so the RNN's results come back in the input's order."""
    if not isinstance(input, Tensor):
        raise TypeError(f"input: expected a lamina Tensor, got {type(input).__name__}")
    if input.ndim < 2:
        raise ValueError(f"input: expected at least 2 dimensions (T, B, *), got shape {tuple(input.shape)}")
    batch = input.shape[0 if batch_first else 1]
    lens = _lengths_array(lengths, batch)
    if enforce_sorted:
        if np.any(np.diff(lens) > 0):
            raise RuntimeError("`lengths` array must be sorted in decreasing order when `enforce_sorted` is "
                               "True. You can pass `enforce_sorted=False` to pack_padded_sequence and/or "
                               "pack_sequence to sidestep this requirement if you do not need ONNX exportability.")
        sorted_indices = None
        order = np.arange(batch)
    else:
        order = np.argsort(-lens, kind="stable")
        sorted_indices = _int64(order)
        lens = lens[order]
    x = input.transpose(0, 1) if batch_first else input                      # (T, B, *)
    if sorted_indices is not None:
        x = x.index_select(1, sorted_indices)
    if batch and lens[-1] <= 0:
        raise RuntimeError(f"Length of all samples has to be greater than 0, but found an element in "
                           f"'lengths' that is <= 0")
    T = int(lens[0]) if batch else 0
    if T > x.shape[0]:
        raise RuntimeError(f"lengths: the longest sequence has length {T} but input has only "
                           f"{x.shape[0]} time steps")
    batch_sizes = np.array([int(np.sum(lens > t)) for t in range(T)], dtype=np.int64)
    data = cat([x[t, :int(b)] for t, b in enumerate(batch_sizes)], 0)
    return PackedSequence(data, _int64(batch_sizes), sorted_indices, None)


def _padded_from_packed(data, batch_sizes, padding_value, total_length):
    """(T, B, *) from packed data, positions past each sequence's end set to padding_value."""
    B = int(batch_sizes[0])
    T = len(batch_sizes) if total_length is None else total_length
    rows, start = [], 0
    tail = tuple(data.shape[1:])
    for t in range(T):
        b = int(batch_sizes[t]) if t < len(batch_sizes) else 0
        step = data[start:start + b]
        start += b
        if b < B:
            pad = Tensor._wrap(np.full((B - b,) + tail, padding_value, dtype=data.dtype))
            step = cat([step, pad], 0) if b else pad
        rows.append(step)
    return stack(rows, 0)


def pad_packed_sequence(sequence, batch_first=False, padding_value=0.0, total_length=None):
    """The inverse of pack_padded_sequence: (padded (T, B, *) or (B, T, *), lengths int64 (B,)),
    in the original batch order."""
    if not isinstance(sequence, PackedSequence):
        raise TypeError(f"sequence: expected a PackedSequence, got {type(sequence).__name__}")
    bs = sequence.batch_sizes._data
    max_len = len(bs)
    if total_length is not None:
        if total_length < max_len:
            raise ValueError("Expected total_length to be at least the length of the longest sequence "
                             f"in input, but got total_length={total_length} and max sequence length "
                             f"being {max_len}")
    out = _padded_from_packed(sequence.data, bs, padding_value, total_length)
    B = int(bs[0])
    lengths = np.array([int(np.sum(bs > i)) for i in range(B)], dtype=np.int64)   # sorted order
    if sequence.unsorted_indices is not None:
        out = out.index_select(1, sequence.unsorted_indices)
        lengths = lengths[sequence.unsorted_indices._data]
    if batch_first:
        out = out.transpose(0, 1)
    return out, _int64(lengths)


def pad_sequence(sequences, batch_first=False, padding_value=0.0, padding_side="right"):
    """Stack tensors of shape (L_i, *) into (max L, B, *) ((B, max L, *) with batch_first),
    padded with padding_value on the right (or left)."""
    if isinstance(sequences, Tensor):
        sequences = list(sequences.unbind(0))
    sequences = list(sequences)
    if not sequences:
        raise RuntimeError("received an empty list of sequences")
    if padding_side not in ("left", "right"):
        raise ValueError(f"Expected padding_side to be one of left or right, but got {padding_side}.")
    tail = tuple(sequences[0].shape[1:])
    for i, s in enumerate(sequences):
        if tuple(s.shape[1:]) != tail:
            raise RuntimeError(f"sequences[{i}]: expected trailing shape {tail}, got {tuple(s.shape[1:])}")
    L = max(s.shape[0] for s in sequences)
    padded = []
    for s in sequences:
        n = L - s.shape[0]
        if n:
            pad = Tensor._wrap(np.full((n,) + tail, padding_value, dtype=s.dtype))
            s = cat([s, pad], 0) if padding_side == "right" else cat([pad, s], 0)
        padded.append(s)
    return stack(padded, 0 if batch_first else 1)


def pack_sequence(sequences, enforce_sorted=True):
    """Pack a list of (L_i, *) tensors: pack_padded_sequence of their pad_sequence."""
    lengths = [s.shape[0] for s in sequences]
    return pack_padded_sequence(pad_sequence(sequences), lengths, enforce_sorted=enforce_sorted)


def unpad_sequence(padded_sequences, lengths, batch_first=False):
    """The list of (L_i, *) tensors in a padded batch."""
    x = padded_sequences if batch_first else padded_sequences.transpose(0, 1)
    lens = _lengths_array(lengths, x.shape[0])
    return [x[i, :int(n)] for i, n in enumerate(lens)]


def unpack_sequence(packed_sequences):
    """The list of (L_i, *) tensors in a PackedSequence, in the original order."""
    padded, lengths = pad_packed_sequence(packed_sequences, batch_first=True)
    return unpad_sequence(padded, lengths, batch_first=True)
