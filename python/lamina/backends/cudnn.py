"""`lamina.backends.cudnn`: flags PyTorch scripts set (deterministic, benchmark); no effect here."""

enabled = False
deterministic = False
benchmark = False


def is_available() -> bool:
    return False
