"""Where a notebook runs and how fast it must be: Colab, grading, fast test mode."""

from __future__ import annotations

import logging
import os
import random
import sys
import warnings

import numpy as np
import torch

#: Set to 1 to run every chapter with tiny data and few training steps (tests, nbval).
FAST_ENV = "GRADCAM_COURSE_FAST"
#: Caps torch's CPU threads; grading runs many kernels side by side.
THREADS_ENV = "GRADCAM_COURSE_THREADS"
#: A folder where `train_classifier` keeps trained weights, keyed by everything that made them,
#: so that a book build trains a model once however many chapters train it (unset: no cache).
MODEL_CACHE_ENV = "GRADCAM_COURSE_MODEL_CACHE"
#: Set by the book build: the notebooks run for readers (no progress bars).
BOOK_ENV = "GRADCAM_COURSE_BOOK"


def grading_mode() -> bool:
    """True while nbgrader executes the notebook (``autograde`` or ``validate``)."""
    return bool(os.environ.get("NBGRADER_EXECUTION"))


def fast_mode() -> bool:
    """True when training must be tiny: under nbgrader or with ``GRADCAM_COURSE_FAST=1``."""
    flag = os.environ.get(FAST_ENV, "").strip().lower()
    return grading_mode() or flag in {"1", "true", "yes", "on"}


def in_colab() -> bool:
    return "google.colab" in sys.modules


def interactive() -> bool:
    """True when a person watches the notebook (progress bars make sense)."""
    return not fast_mode() and not os.environ.get(BOOK_ENV)


def set_seed(seed: int = 0) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def configure_threads() -> int:
    """Pick torch's CPU thread count.

    Small models on 2-core machines slow down badly when several processes each use every
    core, so grading (many kernels side by side) uses one thread unless told otherwise.
    """
    requested = os.environ.get(THREADS_ENV)
    if requested:
        n = max(1, int(requested))
    elif grading_mode():
        n = 1
    else:
        n = max(1, min(os.cpu_count() or 1, 8))
    torch.set_num_threads(n)
    return n


def quiet() -> None:
    """Keep output on stderr to a minimum: nbgrader scores a test cell 0 if it writes there."""
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)


def setup(seed: int = 0, verbose: bool = True) -> torch.device:
    """The chapter's setup step: seed, threads, quiet logs; returns the device to use."""
    set_seed(seed)
    threads = configure_threads()
    quiet()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if verbose:
        mode = "grading/fast mode (tiny training)" if fast_mode() else "full mode"
        print(f"device: {device} | torch {torch.__version__} | {threads} CPU thread(s) | {mode}")
    return device
