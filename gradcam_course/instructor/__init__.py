"""The instructor's side of the course: release, book pages, grading a class, reports.

Students never import this subpackage; it imports the student side (``gradcam_course``) freely.
It needs the ``instructor`` extra (``pip install "gradcam-course[instructor]"``: nbgrader,
jupytext, nbformat, Dask). Modules:

* :mod:`.layout`: the one place that knows the course folder's layout and chapter names;
* :mod:`.release`: ``solutions/<chapter>/<chapter>.py`` → source notebook, student release, book page;
* :mod:`.grade`: ``gradcam-course grade``, a class graded submission by submission;
* :mod:`.report`: ``gradcam-course report``, what a class got right and wrong;
* :mod:`.hidden_checks`: how a hidden test cell finds its chapter's checks in ``autograder/``;
* :mod:`.cli`: the ``gradcam-course`` command.
"""
