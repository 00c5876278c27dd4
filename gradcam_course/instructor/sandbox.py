"""The OS sandbox a submission's kernel runs in under ``gradcam-course grade``.

Bubblewrap (``bwrap``, Debian's ``bubblewrap``) starts the kernel in new user, PID, network,
IPC, UTS and cgroup namespaces, as uid 65534 with no capabilities, in a new session, dying with
the grader. It sees:

* read-only: the system (``/usr``), the Python installation and environment the grader runs
  in, and a staged folder with a copy of the helper package (the chapter's package answers
  removed, see :func:`stage`) and ``autograder/probes``, the only part of the checks that runs
  there (no verdict, no reference solution);
* read-write: its own scratch folder (its working directory and home), the folder holding its
  connection file and sockets, and a private ``/tmp``;
* nothing else: not the course folder, other submissions, the grader's working directory or
  home, the network (the kernel talks to the grader over Unix sockets in its own folder), or
  processes outside it (everything it starts dies with it).

Its address space is capped with ``RLIMIT_AS`` (an allocation beyond it fails inside the
student's process as a ``MemoryError``) and files it writes with ``RLIMIT_FSIZE``; the grader
stops it when its folders hold more than :data:`MAX_SCRATCH_MB` or :data:`MAX_SCRATCH_FILES`
(:class:`ScratchWatch`).
"""

from __future__ import annotations

import ast
import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path

from jupyter_client import AsyncKernelManager

from .layout import PACKAGE_ANSWER_REFUSED, PACKAGE_ANSWERS

BWRAP = "bwrap"
#: The uid the student's code runs as inside its user namespace (``nobody``).
SANDBOX_UID = 65534
MAX_FILE_MB = 1024
#: What a submission may keep in its scratch folders (working directory, /tmp, sockets) in all.
MAX_SCRATCH_MB = 2048
MAX_SCRATCH_FILES = 20_000
#: System files a kernel needs read-only (fonts for matplotlib, the loader's cache, time zone).
SYSTEM_FILES = ("/etc/fonts", "/etc/ld.so.cache", "/etc/localtime", "/etc/mime.types")


def _system_binds() -> list[str]:
    args = ["--ro-bind", "/usr", "/usr"]
    for name in ("bin", "sbin", "lib", "lib32", "lib64"):
        top = Path("/") / name
        if top.is_symlink():  # merged /usr: /lib → usr/lib
            args += ["--symlink", os.readlink(top), str(top)]
        elif top.is_dir():
            args += ["--ro-bind", str(top), str(top)]
    for path in SYSTEM_FILES:
        args += ["--ro-bind-try", path, path]
    return args


def _python_binds() -> list[str]:
    """The interpreter and the environment, read-only, at their own paths (a venv's
    ``bin/python`` links to the base installation)."""
    paths = {sys.prefix, sys.base_prefix, sys.exec_prefix, os.path.realpath(sys.executable)}
    paths |= {os.path.realpath(p) for p in list(paths)}
    roots = sorted({p if os.path.isdir(p) else os.path.dirname(p) for p in paths})
    kept = [p for p in roots if not any(p != q and p.startswith(q.rstrip("/") + "/") for q in roots)]
    return [arg for p in kept if not p.startswith("/usr/") for arg in ("--ro-bind", p, p)]


def argv(kernel_argv: list[str], lib: Path, work: Path, ipc: Path, memory_mb: int,
         tmp: Path | None = None) -> list[str]:
    """The command that runs ``kernel_argv`` in the sandbox; its ``/tmp`` is the folder ``tmp``
    (on disk, where the grader measures it, not in the machine's memory), or a tmpfs."""
    env = {"HOME": str(work), "PYTHONPATH": str(lib), "PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin",
           "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1", "NBGRADER_EXECUTION": "autograde",
           "GRADCAM_COURSE_DATA": "offline", "LANG": "C.UTF-8", "TMPDIR": "/tmp",
           "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "2")}
    limit = int(memory_mb) * 1024 * 1024
    cmd = [shutil.which("prlimit") or "prlimit", f"--as={limit}", f"--fsize={MAX_FILE_MB * 1024 * 1024}", "--core=0",
           shutil.which(BWRAP) or BWRAP, "--unshare-all", "--die-with-parent", "--new-session", "--cap-drop", "ALL",
           "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "sandbox",
           *_system_binds(), *_python_binds(),
           "--proc", "/proc", "--dev", "/dev",
           *(["--bind", str(tmp), "/tmp"] if tmp is not None else ["--tmpfs", "/tmp"]),
           "--ro-bind", str(lib), str(lib), "--bind", str(work), str(work), "--bind", str(ipc), str(ipc),
           "--chdir", str(work), "--clearenv"]
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    return cmd + ["--", *kernel_argv]


@functools.lru_cache(maxsize=None)
def unavailable() -> str | None:
    """Why the sandbox cannot start here (None when it can): tried once per process."""
    if not sys.platform.startswith("linux"):
        return f"bubblewrap needs Linux (this is {sys.platform})"
    if shutil.which(BWRAP) is None or shutil.which("prlimit") is None:
        return "bwrap (Debian/Ubuntu: apt-get install bubblewrap) or prlimit (util-linux) is not installed"
    probe = argv([sys.executable, "-c", "import sys; sys.exit(0)"], Path("/"), Path("/tmp"), Path("/tmp"), 4096)
    try:
        run = subprocess.run(probe, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as err:
        return f"bwrap could not start: {err}"
    if run.returncode != 0:
        detail = " ".join(run.stderr.split())[-200:]
        return f"bwrap could not start a sandbox ({detail or f'exit {run.returncode}'}); user namespaces may be disabled"
    return None


# --- what the kernel may import ----------------------------------------------------------------

def _without_answers(source: str, names: set[str], module: str) -> str:
    """The module's source with the named top-level functions' bodies replaced by a refusal."""
    tree = ast.parse(source)
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name in names:
            message = (f"Your function uses {module}.{node.name}, {PACKAGE_ANSWER_REFUSED}: write "
                       "your own (gradcam-course grade flags this).")
            node.body = [ast.Raise(exc=ast.Call(func=ast.Name("AssertionError", ast.Load()),
                                                args=[ast.Constant(message)], keywords=[]), cause=None)]
    return ast.unparse(ast.fix_missing_locations(tree))


def stage(lib: Path, files: dict[str, bytes], chapter: str) -> None:
    """Fill ``lib`` (the kernel's ``PYTHONPATH``) with ``autograder/probes`` from ``files`` and a
    copy of the installed helper package in which the chapter's package answers
    (``layout.PACKAGE_ANSWERS``) are not there to call: their bodies only refuse."""
    import gradcam_course

    for rel, data in files.items():
        if rel == "autograder/__init__.py" or rel.startswith("autograder/probes/"):
            (lib / rel).parent.mkdir(parents=True, exist_ok=True)
            (lib / rel).write_bytes(data)
    package = Path(gradcam_course.__file__).resolve().parent
    shutil.copytree(package, lib / "gradcam_course", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    answers: dict[str, set[str]] = {}
    for qualname in PACKAGE_ANSWERS.get(chapter, {}).values():
        module, name = qualname.rsplit(".", 1)
        answers.setdefault(module, set()).add(name)
    for module, names in answers.items():
        path = lib / Path(*module.split(".")).with_suffix(".py")
        path.write_text(_without_answers(path.read_text(), names, module))


class SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel starts inside :func:`argv`'s sandbox (or, with
    ``sandboxed=False``, as a plain child process with the same limits and environment)."""

    def __init__(self, *, lib: Path, work: Path, ipc: Path, tmp: Path, memory_mb: int, sandboxed: bool,
                 **kwargs):
        super().__init__(transport="ipc", ip=str(ipc / "kernel"), connection_file=str(ipc / "kernel.json"),
                         **kwargs)
        self._sandbox = dict(lib=lib, work=work, ipc=ipc, tmp=tmp, memory_mb=memory_mb)
        self._sandboxed = sandboxed
        # A cell that runs past its time limit is interrupted through the control channel: a
        # SIGINT would reach prlimit/bwrap, not the kernel inside.
        self.kernel_spec.interrupt_mode = "message"

    def format_kernel_cmd(self, extra_arguments=None):
        cmd = super().format_kernel_cmd(extra_arguments)
        # Unsandboxed, the kernel inherits the judge's own address-space limit (worker()).
        return argv(cmd, **self._sandbox) if self._sandboxed else cmd

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        env = dict(kw.get("env") or os.environ)
        if not self._sandboxed:  # the same environment the sandbox sets, in a plain process
            env.update(HOME=str(self._sandbox["work"]), PYTHONPATH=str(self._sandbox["lib"]),
                       TMPDIR=str(self._sandbox["tmp"]),
                       MPLBACKEND="Agg", NBGRADER_EXECUTION="autograde", PYTHONDONTWRITEBYTECODE="1")
            for key in [k for k in env if k.startswith(("GRADCAM_COURSE_", "KAGGLE", "JPY_"))]:
                del env[key]
            env["GRADCAM_COURSE_DATA"] = "offline"  # the sandbox has no network either
        kw["env"] = env
        kw["cwd"] = str(self._sandbox["work"])
        # What the kernel writes to its raw file descriptors (os.write(1, …)) must not pile up
        # in the grader: its cells' output arrives as messages, capped per cell.
        kw["stdout"] = kw["stderr"] = subprocess.DEVNULL
        return await super()._async_launch_kernel(kernel_cmd, **kw)


class ScratchWatch:
    """Measures a sandbox's folders every ``interval`` seconds from outside and calls ``stop``
    once they hold more than :data:`MAX_SCRATCH_MB` or :data:`MAX_SCRATCH_FILES` entries
    (``RLIMIT_FSIZE`` bounds one file, not how many). ``exceeded`` then says what."""

    def __init__(self, folders: list[Path], stop, interval: float = 1.0,
                 max_mb: int = MAX_SCRATCH_MB, max_files: int = MAX_SCRATCH_FILES):
        import threading

        self.folders, self.stop_sandbox, self.interval = folders, stop, interval
        self.max_bytes, self.max_files = max_mb * 1024 * 1024, max_files
        self.exceeded: str | None = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def measure(self) -> tuple[int, int]:
        """(bytes, entries) under the folders, without following links; iterative, so a
        folder nested 3 000 deep is no problem."""
        size = entries = 0
        stack = [str(f) for f in self.folders]
        while stack and size <= self.max_bytes and entries <= self.max_files:
            try:
                with os.scandir(stack.pop()) as it:
                    for entry in it:
                        entries += 1
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                stack.append(entry.path)
                            else:
                                size += entry.stat(follow_symlinks=False).st_size
                        except OSError:
                            pass
            except OSError:
                pass
        return size, entries

    def _run(self):
        while not self._done.wait(self.interval):
            size, entries = self.measure()
            if size > self.max_bytes or entries > self.max_files:
                self.exceeded = (f"stopped by the grader: its scratch folders held more than "
                                 f"{self.max_bytes // 2**20} MB or {self.max_files} files")
                self.stop_sandbox()
                return

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        return False
