"""The one call the grader sends to a student's kernel for each hidden check::

    run("ch01_mnist_lenet", "probe_capture_values", capture_activations_and_gradients, "/scratch/probe-….json")

It imports the chapter's probe, calls it with the student's function and writes what it saw as
plain data (:mod:`.plain`), with the watched libraries (:data:`WATCHED`) the call went into. An exception raised by the student's function propagates, so the
test cell shows the student's own traceback. Everything here runs in the student's process and
can be subverted there; that only changes the data the grader receives, never the verdict's code.
"""

from __future__ import annotations

import importlib
import sys
import threading

from . import plain

#: Libraries with finished implementations of the course's methods: a graded function that calls
#: them is flagged for a person (it keeps the points its results earn).
WATCHED = ("pytorch_grad_cam", "captum")


def run(module: str, probe: str, function, path: str) -> None:
    probe = getattr(importlib.import_module(f"autograder.probes.{module}"), probe)
    called: set[str] = set()

    def profile(frame, event, arg):
        if event == "call":
            top = str(frame.f_globals.get("__name__", "")).split(".", 1)[0]
            if top in WATCHED:
                called.add(top)

    sys.setprofile(profile)
    threading.setprofile(profile)
    try:
        seen = probe(function)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)
    text = plain.dumps({"seen": seen, "libraries": sorted(called)})
    with open(path, "w") as f:
        f.write(text)
