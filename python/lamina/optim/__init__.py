"""Optimizers over lamina parameters (SGD and Adam updates run in lamina._C kernels, the
adaptive ones in NumPy; all in place on the parameter's array)."""
from . import lr_scheduler
from .adam import Adam, AdamW
from .adaptive import Adadelta, Adagrad, RMSprop
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "RMSprop", "Adagrad", "Adadelta", "lr_scheduler"]
