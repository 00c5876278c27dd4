"""The rules every dataset loader of the course follows: real first, offline always.

Every loader takes ``mode``: ``"auto"`` (default) tries the real source and falls back to the
offline one with a printed reason; ``"real"`` fails loudly instead of falling back;
``"offline"`` never touches the network. ``GRADCAM_COURSE_DATA`` sets the default mode and
``GRADCAM_COURSE_DATA_DIR`` where downloads are kept. Each dataset has its own module, named
in its chapter's name: ``mnist`` (chapter 1), ``imagenet`` (2), ``ct`` (3, 5), ``pcam`` (4).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, TypeVar

import torch
from torch.utils.data import TensorDataset

MODE_ENV = "GRADCAM_COURSE_DATA"
DIR_ENV = "GRADCAM_COURSE_DATA_DIR"
MODES = ("auto", "real", "offline")
T = TypeVar("T")


def resolve_mode(mode: str | None = None) -> str:
    mode = (mode or os.environ.get(MODE_ENV) or "auto").strip().lower()
    if mode not in MODES:
        raise ValueError(
            f"Unknown data mode {mode!r}: use one of {MODES} "
            f"(argument `mode=` or environment variable {MODE_ENV})."
        )
    return mode


def data_dir(root: str | os.PathLike | None = None) -> Path:
    if root is not None:
        return Path(root)
    return Path(os.environ.get(DIR_ENV, Path.home() / ".cache" / "gradcam-course"))


def banner(title: str, detail: str) -> str:
    line = "=" * max(len(title), 20)
    return f"{line}\n{title}\n{line}\n{detail}"


def real_or_offline(mode: str | None, load_real: Callable[[], T], load_offline: Callable[[], T],
                    what: str, advice: str) -> tuple[T, str]:
    """The one fallback rule of every loader in the course.

    Returns ``(result, reason)``; ``reason`` is empty when the real source was used and says
    why otherwise. In ``real`` mode a failure is an error that ends with ``advice``.
    """
    mode = resolve_mode(mode)
    if mode == "offline":
        return load_offline(), f"{MODE_ENV}=offline"
    try:
        return load_real(), ""
    except Exception as err:  # no network, blocked mirror, corrupt files...
        if mode == "real":
            raise RuntimeError(f"Could not load {what}: {err}. {advice}") from err
        detail = " ".join(str(err).split())
        return load_offline(), f"{what} could not be downloaded ({type(err).__name__}: {detail[:160]})"


def subset(ds: TensorDataset, n: int, seed: int = 0) -> TensorDataset:
    if n >= len(ds):
        return ds
    idx = torch.randperm(len(ds), generator=torch.Generator().manual_seed(seed))[:n]
    return TensorDataset(*(t[idx] for t in ds.tensors))


#: Chapter 1's loaders lived here before they moved to :mod:`gradcam_course.mnist`; notebooks
#: handed out before the move still import them from here.
_MOVED_TO_MNIST = {"DigitSplits", "DigitsDataModule", "digits_as_mnist", "load_digit_splits",
                   "load_offline_digits", "load_real_mnist"}


def __getattr__(name: str):
    if name in _MOVED_TO_MNIST:
        from . import mnist

        return getattr(mnist, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
