"""lamina.nn: layers, losses and containers with PyTorch's names and semantics."""
from . import functional, init, parallel  # noqa: F401
from .module import Buffer, Module, ModuleShapeError, Parameter  # noqa: F401
from .modules.activation import (CELU, ELU, GELU, GLU, Hardshrink, Hardsigmoid, Hardswish,  # noqa: F401
                                 Hardtanh, LeakyReLU, LogSigmoid, LogSoftmax, PReLU, ReLU, ReLU6, SELU,
                                 Sigmoid, SiLU, Softmax, Softmin, Softplus, Softshrink, Softsign, Step,
                                 Tanh, Tanhshrink, Threshold, RReLU)
from .modules.container import ModuleDict, ModuleList, ParameterDict, ParameterList, Sequential  # noqa: F401
from .modules.linear import Embedding, Flatten, Identity, Linear, Unflatten  # noqa: F401
from .modules.padding import (CircularPad1d, CircularPad2d, CircularPad3d, ConstantPad1d,  # noqa: F401
                              ConstantPad2d, ConstantPad3d, ReflectionPad1d, ReflectionPad2d, ReflectionPad3d,
                              ReplicationPad1d, ReplicationPad2d, ReplicationPad3d, ZeroPad1d, ZeroPad2d, ZeroPad3d)
from .modules.loss import (BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, HuberLoss, KLDivLoss,  # noqa: F401
                           L1Loss, MSELoss, NLLLoss, SmoothL1Loss, CosineEmbeddingLoss, GaussianNLLLoss,
                           HingeEmbeddingLoss, MarginRankingLoss, MultiLabelSoftMarginLoss, MultiMarginLoss,
                           PoissonNLLLoss, SoftMarginLoss, TripletMarginLoss)
from . import utils  # noqa: F401

from .modules.conv import Conv1d, Conv2d, Conv3d, ConvTranspose2d  # noqa: F401
from .modules.pooling import (AdaptiveAvgPool2d, AdaptiveAvgPool3d, AvgPool1d, AvgPool2d, AvgPool3d,  # noqa: F401
                              MaxPool1d, MaxPool2d, MaxPool3d)
from .normalization import (AlphaDropout, FeatureAlphaDropout, BatchNorm1d, BatchNorm2d, BatchNorm3d, RMSNorm, Dropout, Dropout2d, GroupNorm,  # noqa: F401
                            InstanceNorm1d, InstanceNorm2d, InstanceNorm3d, LayerNorm)
from .modules.resample import (PixelShuffle, PixelUnshuffle, Upsample, UpsamplingBilinear2d,  # noqa: F401
                               UpsamplingNearest2d)
from .modules.transformer import (MultiheadAttention, Transformer, TransformerDecoder,  # noqa: F401
                                  TransformerDecoderLayer, TransformerEncoder, TransformerEncoderLayer)
from .modules.misc import (AdaptiveAvgPool1d, AdaptiveMaxPool1d, AdaptiveMaxPool2d, Bilinear,  # noqa: F401,E402
                           ConvTranspose1d, CosineSimilarity, Dropout1d, Dropout3d, EmbeddingBag, Fold, LocalResponseNorm, Mish,
                           PairwiseDistance, Softmax2d, Unfold)
from .modules.rnn import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNBase, RNNCell, RNNCellBase  # noqa: F401
from .modules.misc import ChannelShuffle, DataParallel, LazyLinear, LPPool1d, LPPool2d, MaxUnpool1d, MaxUnpool2d  # noqa: F401,E402
from .modules.misc import (AdaptiveMaxPool3d, LazyBatchNorm1d, LazyBatchNorm2d, LazyBatchNorm3d,  # noqa: F401,E402
                           LazyConv1d, LazyConv2d, LazyConv3d, LazyConvTranspose1d, LazyConvTranspose2d,
                           LazyInstanceNorm1d, LazyInstanceNorm2d, LazyInstanceNorm3d, LPPool3d, MaxUnpool3d)
from .modules.loss import MultiLabelMarginLoss, TripletMarginWithDistanceLoss  # noqa: F401,E402
from . import parameter  # noqa: F401,E402
from .parameter import UninitializedBuffer, UninitializedParameter  # noqa: F401,E402
