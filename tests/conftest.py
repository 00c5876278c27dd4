import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = "01_mnist_lenet"
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # makes `autograder` importable for the reference tests

os.environ.setdefault("GRADCAM_COURSE_DATA", "offline")
os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT
