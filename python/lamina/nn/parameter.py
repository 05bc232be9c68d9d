"""torch.nn.parameter's names: Parameter, Buffer, and the uninitialized placeholders.

lamina's Lazy* modules register no placeholder (they build the real layer at the first call, as
LazyLinear does); UninitializedParameter is here for code that makes one itself and later calls
`materialize(shape)`."""
import numpy as np

from ..tensor import get_default_dtype
from .module import Buffer, Parameter

__all__ = ["Parameter", "Buffer", "UninitializedParameter", "UninitializedBuffer", "is_lazy"]


class _Uninitialized:
    __slots__ = ()            # Parameter's layout, so materialize can switch the class
    cls_to_become = None

    def materialize(self, shape, device=None, dtype=None):
        """Become a real (zero-filled; PyTorch's is uninitialized) tensor of `shape`."""
        if isinstance(shape, int):
            shape = (shape,)
        dt = np.dtype(dtype) if dtype is not None else get_default_dtype()
        self._data = np.zeros(tuple(int(s) for s in shape), dt)
        self.__class__ = self.cls_to_become

    @property
    def shape(self):
        raise RuntimeError("Can't access the shape of an uninitialized parameter or buffer. This error usually "
                           "happens in `load_state_dict` when trying to load an uninitialized parameter into an "
                           "initialized one. Call `forward` to initialize the parameters before accessing their "
                           "attributes.")

    def __repr__(self):
        return f"<{type(self).__name__}>"


class UninitializedParameter(_Uninitialized, Parameter):
    """A parameter with no shape yet; `materialize(shape)` makes it a Parameter."""
    __slots__ = ()
    cls_to_become = Parameter

    def __init__(self, requires_grad=True, device=None, dtype=None):
        super().__init__(None, requires_grad)


class UninitializedBuffer(_Uninitialized, Parameter):
    """A buffer with no shape yet; `materialize(shape)` makes it a Parameter-layout tensor that
    does not require grad."""
    __slots__ = ()
    cls_to_become = Parameter

    def __init__(self, requires_grad=False, device=None, dtype=None, persistent=True):
        Parameter.__init__(self, None, requires_grad)


def is_lazy(param):
    return isinstance(param, _Uninitialized)
