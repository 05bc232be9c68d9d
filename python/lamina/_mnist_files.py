"""Where MNIST files are looked for, and the error naming what is missing.

Shared by datasets.py (reading) and _download.py (fetching) so neither imports the other's module.
"""
from __future__ import annotations

from pathlib import Path
from typing import Optional


class MNISTNotFoundError(FileNotFoundError):
    """MNIST files are missing and could not be downloaded (the message says what to set)."""


def _find_file(directory: Path, name: str) -> Optional[Path]:
    for candidate in (directory / name, directory / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def _missing_message(mnist_dir: Path, missing, detail: str = "") -> str:
    # One line on purpose: it is what the CLI prints.
    msg = (f"MNIST files not found in {mnist_dir} (missing: {', '.join(missing)})"
           f"{'; ' + detail if detail else ''}; "
           f"pass --data DIR or set LAMINA_DATA=DIR to a directory holding mnist/")
    return msg
