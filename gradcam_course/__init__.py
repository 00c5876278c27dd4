"""Helper package of the Grad-CAM course: what students import.

Shared logic lives here once: the data rule (``data``) and one module per dataset with its
models (``mnist``, ``imagenet``, ``ct``, ``pcam``), Lightning training, plotting, the metrics
that score explanations, and the grading-mode switches (``runtime``). The instructor's tools
are the ``instructor`` subpackage, which nothing here imports.

Most of what the exercises ask for is not here; the reference solutions live in
``autograder/``, which is never installed. Three finished functions are, because later
chapters use them: ``metrics.pointing_game`` and ``metrics.energy_pointing_game`` (chapter 3's
exercise 4) and ``metrics.insertion_deletion`` (chapter 4's exercise 5). In the chapter that
asks for them, the hidden checks refuse them and ``gradcam-course grade`` flags a submission
that uses them (``instructor.layout.PACKAGE_ANSWERS``).
"""

__version__ = "0.1.0"

from .runtime import fast_mode, grading_mode, in_colab, setup  # noqa: F401
