"""The grading sandbox (gradcam_course.instructor.sandbox) and the plain-data codec that is the
only thing crossing out of it (autograder.probes.plain)."""

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from autograder.probes import plain
from gradcam_course.instructor import sandbox

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def staged(tmp_path_factory):
    """A staged sandbox (library, scratch, socket folder) for chapter 3, whose package answers
    must not be callable inside it."""
    base = tmp_path_factory.mktemp("sandbox")
    lib, work, ipc = base / "lib", base / "work", base / "ipc"
    for d in (lib, work, ipc):
        d.mkdir()
    files = {str(p.relative_to(ROOT)): p.read_bytes() for p in (ROOT / "autograder").rglob("*.py")}
    sandbox.stage(lib, files, "03_resnet_covid_ct")
    return lib, work, ipc


def in_sandbox(staged, code: str, timeout=120) -> subprocess.CompletedProcess:
    assert sandbox.unavailable() is None, f"the sandbox must start here: {sandbox.unavailable()}"
    lib, work, ipc = staged
    cmd = sandbox.argv([sys.executable, "-c", textwrap.dedent(code)], lib, work, ipc, memory_mb=4096)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def test_the_sandbox_sees_neither_the_course_nor_the_network(staged):
    lib, work, ipc = staged
    run = in_sandbox(staged, f"""
        import os, socket
        print("course", os.path.exists({str(ROOT / 'solutions')!r}), os.path.exists({str(ROOT / 'autograder' / 'reference')!r}))
        print("home", os.path.exists('/root/.bash_history'), sorted(os.listdir({str(work.parent)!r})))
        print("uid", os.getuid(), "pids", sorted(p for p in os.listdir('/proc') if p.isdigit()))
        try:
            socket.create_connection(("127.0.0.1", 22), timeout=2)
            print("net open")
        except OSError as err:
            print("net", type(err).__name__)
        for target in ({str(lib / 'gradcam_course' / 'x.py')!r}, {sys.executable!r}):
            try:
                open(target, "a").close()
                print("wrote", target)
            except OSError as err:
                print("ro", err.errno)
        open({str(work / 'scratch.txt')!r}, "w").write("mine")
        import autograder.probes, gradcam_course
        print("lib", gradcam_course.__file__.startswith({str(lib)!r}))
        try:
            import autograder.reference
            print("reference importable")
        except ImportError:
            print("no reference")
    """)
    assert run.returncode == 0, run.stderr[-2000:]
    out = run.stdout
    assert "course False False" in out and "home False ['ipc', 'lib', 'work']" in out
    assert "uid 65534 pids ['1', '2']" in out  # its own init and itself: no grader, no classmate
    assert "net ConnectionRefusedError" in out or "net OSError" in out or "net open" not in out
    assert "wrote" not in out and out.count("ro ") == 2
    assert "lib True" in out and "no reference" in out
    assert (work / "scratch.txt").read_text() == "mine"


def test_everything_it_starts_dies_with_it(staged, tmp_path):
    marker = f"gradcam-sandbox-orphan-{tmp_path.name}"
    run = in_sandbox(staged, f"""
        import subprocess, sys
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)", {marker!r}],
                         start_new_session=True)
        print("started")
    """)
    assert run.returncode == 0 and "started" in run.stdout, run.stderr[-2000:]
    left = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
    assert left.stdout.strip() == "", f"a background process outlived its sandbox: {left.stdout}"


def test_memory_beyond_the_limit_fails_inside(staged):
    run = in_sandbox(staged, """
        try:
            bytearray(64 * 1024**3)
        except MemoryError:
            print("refused")
    """)
    assert run.returncode == 0 and "refused" in run.stdout, run.stderr[-2000:]


def test_the_chapters_package_answers_are_not_in_the_sandbox(staged):
    run = in_sandbox(staged, """
        import torch
        from gradcam_course import metrics
        for name in ("pointing_game", "energy_pointing_game"):
            try:
                getattr(metrics, name)(torch.ones(1, 4, 4), torch.ones(1, 4, 4, dtype=torch.bool))
                print(name, "answered")
            except AssertionError as err:
                print(name, "refused:", err)
        print("other", type(metrics.score_signs).__name__)
    """)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "answered" not in run.stdout
    assert run.stdout.count("the helper package's answer to this exercise") == 2
    assert "other function" in run.stdout


# --- the codec ------------------------------------------------------------------------------

def test_plain_data_round_trips_with_its_types():
    value = {"t": torch.arange(6.0).reshape(2, 3).requires_grad_(), "a": np.ones((2, 2), np.uint8),
             "s": np.float32(1.5), "n": (1, 2.5, "x", None, True, float("nan")), 3: [torch.tensor([1, 2])]}
    back = plain.loads(plain.dumps(value))
    assert type(back["t"]) is torch.Tensor and back["t"].requires_grad and torch.equal(back["t"], value["t"])
    assert type(back["a"]) is np.ndarray and back["a"].dtype == np.uint8
    assert type(back["s"]) is np.float32 and back["s"] == 1.5
    assert back["n"][:5] == (1, 2.5, "x", None, True) and np.isnan(back["n"][5])
    assert torch.equal(back[3][0], torch.tensor([1, 2]))


def test_objects_cross_as_their_type_name_only():
    class Sneaky(torch.Tensor):
        def __eq__(self, other):
            return True

    back = plain.loads(plain.dumps({"fig": object(), "sub": torch.zeros(2).as_subclass(Sneaky)}))
    assert isinstance(back["fig"], plain.Other) and back["fig"].type_name == "builtins.object"
    assert isinstance(back["sub"], plain.Other) and "Sneaky" in back["sub"].type_name


@pytest.mark.parametrize("text", [
    "not json", json.dumps({"__array__": "tensor", "dtype": "object", "shape": [1], "data": ""}),
    json.dumps({"__array__": "tensor", "dtype": "float32", "shape": [1000], "data": "AAAA"}),
    json.dumps({"__pickle__": "gASVAAAA"}), json.dumps({"__dict__": [[["list"], 1]]}),
    json.dumps({"__tuple__": 5}), "[" * 100_000 + "]" * 100_000])
def test_a_forged_result_is_refused_not_run(text):
    with pytest.raises(plain.MalformedResult):
        plain.loads(text)


def test_a_submissions_cgroup_bounds_all_its_processes_together(staged):
    """Processes and memory are counted over everything the sandbox starts: a fork bomb's fork()
    fails inside it, and three processes that each stay under the per-process limit but together
    pass the group's are stopped by the OOM killer, which the group records."""
    if not {"pids", "memory"} <= set(sandbox._own_cgroups()):
        pytest.skip("no pids and memory cgroups can be made here (not root on cgroup v1, no delegated v2)")
    lib, work, ipc = staged
    group = sandbox.Cgroup.create(memory_mb=600, max_processes=40)
    assert group is not None and {"pids", "memory"} <= set(group.folders)
    try:
        forks = group.enter(sandbox.argv([sys.executable, "-c", textwrap.dedent("""
            import os, time
            n = 0
            for _ in range(200):
                try:
                    if os.fork() == 0:
                        time.sleep(3)
                        os._exit(0)
                    n += 1
                except OSError:
                    break
            print("forked", n)
        """)], lib, work, ipc, memory_mb=4096))
        run = subprocess.run(forks, capture_output=True, text=True, timeout=60)
        started = int(run.stdout.split()[-1]) if run.stdout.startswith("forked") else None
        assert started is not None and 10 < started < 40, (run.stdout, run.stderr[-500:])
        assert group.oom_kills() == 0
        hogs = group.enter(sandbox.argv([sys.executable, "-c", textwrap.dedent("""
            import os, time
            children = []
            for _ in range(3):
                pid = os.fork()
                if pid == 0:
                    block = bytearray(250 * 2**20)
                    for i in range(0, len(block), 4096):
                        block[i] = 1
                    time.sleep(5)
                    os._exit(0)
                children.append(pid)
            print([os.waitpid(pid, 0)[1] for pid in children])
        """)], lib, work, ipc, memory_mb=4096))
        run = subprocess.run(hogs, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr[-500:]
        statuses = json.loads(run.stdout)
        assert 9 in statuses and group.oom_kills() >= 1, statuses  # one was SIGKILLed by the OOM killer
    finally:
        group.remove()
    assert not any(f.exists() for f in group.folders.values())


def test_the_grader_says_which_limits_it_could_set():
    text = sandbox.limits(8192)
    if sandbox._own_cgroups():
        assert text.startswith("limits per submission:") and "8192 MB" in text
    else:
        assert text.startswith("limits: per process only")
