"""Helper package of the Grad-CAM course.

Shared logic lives here once: data loaders (real and offline), models, Lightning training,
plotting and the grading-mode switches. What students implement in the exercises is
deliberately *not* importable from here; reference solutions live in ``autograder/``.
"""

__version__ = "0.1.0"

from .runtime import fast_mode, grading_mode, in_colab, setup  # noqa: F401
