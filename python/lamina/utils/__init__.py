"""`lamina.utils`: PyTorch's `torch.utils` namespace (today: `lamina.utils.data`)."""
from . import data  # noqa: F401
