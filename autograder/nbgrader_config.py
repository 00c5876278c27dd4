"""nbgrader configuration of the Grad-CAM course.

Run nbgrader from this folder (``cd autograder``): the course root is the repository, source
notebooks live in ``solutions/`` and student notebooks are released into ``notebooks/``.
Submissions, autograded notebooks, feedback and the gradebook stay out of git.
"""

import os
from pathlib import Path

c = get_config()  # noqa: F821 (provided by nbgrader)

COURSE_ROOT = Path(__file__).resolve().parent.parent
# The hidden tests find autograder/checks/ through this variable (the kernel inherits it).
os.environ["GRADCAM_COURSE_ROOT"] = str(COURSE_ROOT)

c.CourseDirectory.course_id = "gradcam-course"
c.CourseDirectory.root = str(COURSE_ROOT)
c.CourseDirectory.source_directory = "solutions"
c.CourseDirectory.release_directory = "notebooks"
c.CourseDirectory.submitted_directory = "submitted"
c.CourseDirectory.autograded_directory = "autograded"
c.CourseDirectory.feedback_directory = "feedback"
c.CourseDirectory.db_url = f"sqlite:///{COURSE_ROOT / 'gradebook.db'}"
# The Jupytext .py pair of a source notebook holds the solutions and hidden tests: never copy
# it into the student release (or into the autograded folder, where student code runs).
c.CourseDirectory.ignore = [".ipynb_checkpoints", "*.pyc", "__pycache__", "feedback", "*.py"]

# Per cell; grading-mode training is kept far below it. Execute wins over
# ExecutePreprocessor, so set this one.
c.Execute.timeout = 60
# A graded cell that writes to stderr scores 0 even when its asserts pass: ignore warnings.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = r".*(Warning|warn\(|warnings\.warn).*"
# A student who deletes a test cell gets it back (and graded), instead of a cell that needs
# manual grading forever.
c.OverwriteCells.add_missing_cells = True
