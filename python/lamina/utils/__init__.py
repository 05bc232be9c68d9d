"""`lamina.utils`: PyTorch's `torch.utils` namespace (today: `lamina.utils.data`)."""
from . import checkpoint, data  # noqa: F401
