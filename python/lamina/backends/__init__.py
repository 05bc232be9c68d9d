"""`lamina.backends`: PyTorch's backend queries (`backends.mps.is_available()` ...), all CPU-only."""
from . import cudnn, mps  # noqa: F401
