"""lamina.utils.data: data loading helpers with torch.utils.data's names."""
from .distributed import DistributedSampler  # noqa: F401
