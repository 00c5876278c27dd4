"""Student answers, right and wrong, one module per chapter (``variants.ch01_mnist_lenet`` …).

Each module maps the solution cell it replaces to answers: every wrong answer is a mistake seen
in real code and must lose points in its own exercise only; every alternative is correct and
must keep full points.
"""

import importlib
from types import ModuleType

from gradcam_course.instructor.layout import module_name


def of(chapter: str) -> ModuleType:
    """The variants of ``chapter`` (e.g. ``03_resnet_covid_ct``)."""
    return importlib.import_module(f"variants.{module_name(chapter)}")
