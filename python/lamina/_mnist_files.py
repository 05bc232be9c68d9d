"""Where IDX data set files are looked for, and the error naming what is missing.

Shared by datasets.py (reading) and _download.py (fetching) so neither imports the other's module.
"""
from __future__ import annotations

from pathlib import Path
from typing import Callable, List, Optional


class DatasetNotFoundError(FileNotFoundError):
    """Data set files (MNIST, Fashion-MNIST) are missing and could not be downloaded (the
    message says what to set)."""


MNISTNotFoundError = DatasetNotFoundError   # its first name, kept for existing code


def _find_file(directory: Path, name: str) -> Optional[Path]:
    for candidate in (directory / name, directory / (name + ".gz")):
        if candidate.is_file():
            return candidate
    return None


def missing_message(title: str, folder: str, directory: Path, missing, detail: str = "") -> str:
    # One line on purpose: it is what the CLI prints.
    return (f"{title} files not found in {directory} (missing: {', '.join(missing)})"
            f"{'; ' + detail if detail else ''}; "
            f"pass --data DIR or set LAMINA_DATA=DIR to a directory holding {folder}/")


def _missing_message(mnist_dir: Path, missing, detail: str = "") -> str:
    return missing_message("MNIST", "mnist", mnist_dir, missing, detail)


def not_found_error(title: str, folder: str) -> Callable[[Path, List[str], str], Exception]:
    """A function making the one-line DatasetNotFoundError of data set `title`."""
    def make(directory: Path, missing: List[str], detail: str = "") -> Exception:
        return DatasetNotFoundError(missing_message(title, folder, directory, missing, detail))
    return make
