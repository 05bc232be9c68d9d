"""lamina.ops: every differentiable primitive, one definition per op, grouped by family.

  arith       add sub mul div neg pow exp log abs sin cos clamp clone cast
  reduce      sum mean max min
  shape       reshape permute expand getitem cat stack
  linalg      matmul linear
  activation  relu/sigmoid/tanh/... softmax log_softmax
  loss        cross_entropy nll mse bce_with_logits
  conv        conv1d conv2d
  pool        max/avg/adaptive pooling
  norm        batch_norm layer_norm group_norm dropout (dropout2d)
  math        tan log1p expm1 rsqrt sign maximum minimum where sinh cosh asin acos atan asinh
              acosh atanh erf erfc erfinv reciprocal atan2
  stats       cumsum cumprod prod logsumexp amax/amin (var std composed)
  index       gather scatter index_select masked_fill repeat (topk sort through gather)
  contract    mm bmm einsum
  nn_extra    elu gelu silu pad embedding binary_cross_entropy
  act_extra   hardtanh/relu6 hardsigmoid hardswish selu celu softsign logsigmoid tanhshrink
              hardshrink softshrink threshold prelu (softmin glu composed)
  decomp      linalg inv det slogdet solve cholesky eigh
  grid        grid_sample (affine_grid composed)
  volume      conv3d max/avg/adaptive pool3d (composed from the 2-D ops over depth slices)

Each op is a Function registered in `registry` with its lowering, kernels and samples: eager
autodiff, the graph compiler (lamina.graph) and tests/test_opinfo.py all read that one record.
See README.md, "Adding an op".
"""
from . import registry  # noqa: F401
from ._common import EAGER, FLOATS as _FLOATS, empty as _empty, float_check as _float_check  # noqa: F401
from .arith import (Abs, Add, Cast, Clamp, Clone, Cos, Div, Exp, Log, Mul, Neg, Pow,  # noqa: F401
                    PowTensor, Sin, Sub)
from .reduce import MaxAll, MaxDim, Mean, Sum, _max_min, _MaxResult, max_, min_  # noqa: F401
from .shape import Cat, Expand, GetItem, Permute, Reshape, cat, stack  # noqa: F401
from .linalg import Linear, MatMul2D, MatMulBatched, _gemm, linear, matmul  # noqa: F401
from .activation import Activation, Softmax, _rows, _unrows, activation, log_softmax, softmax  # noqa: F401
from .loss import BCEWithLogits, CrossEntropy, MSE  # noqa: F401
from .conv import Conv1dFn, Conv2dFn, conv1d, conv2d  # noqa: F401
from .norm import BatchNormFn, DropoutFn, GroupNormFn, LayerNormFn  # noqa: F401
from .pool import (AdaptiveAvgPool2dFn, AvgPool2dFn, MaxPool2dFn, adaptive_avg_pool2d,  # noqa: F401
                   avg_pool1d, avg_pool2d, max_pool1d, max_pool2d)
from . import contract, index, math, stats  # noqa: F401,E402
from .nn_extra import BinaryCrossEntropy, ELU, Embedding, GELU, Pad, SiLU  # noqa: F401
from . import act_extra, decomp, grid, volume  # noqa: F401,E402
from ..tensor import Function, Tensor, float32, float64, int64  # noqa: F401,E402

_ACT_EPILOGUE = {None: "identity", "identity": "identity", "relu": "relu", "sigmoid": "sigmoid",
                 "tanh": "tanh"}
