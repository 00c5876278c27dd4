"""gradcam_course.runtime: fast and grading modes, threads, the setup step."""

from __future__ import annotations

import pytest
import torch

from gradcam_course import runtime


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


# --------------------------------------------------------------------------- runtime

@pytest.fixture
def clean_env(monkeypatch):
    for name in ("NBGRADER_EXECUTION", runtime.FAST_ENV, runtime.THREADS_ENV):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_fast_mode(clean_env):
    assert runtime.fast_mode() is False
    assert runtime.grading_mode() is False
    clean_env.setenv("NBGRADER_EXECUTION", "autograde")
    assert runtime.fast_mode() is True and runtime.grading_mode() is True
    clean_env.delenv("NBGRADER_EXECUTION")
    for on in ("1", "true", "YES", " on "):
        clean_env.setenv(runtime.FAST_ENV, on)
        assert runtime.fast_mode() is True, on
    for off in ("0", "", "false", "no"):
        clean_env.setenv(runtime.FAST_ENV, off)
        assert runtime.fast_mode() is False, off


def test_configure_threads(clean_env, restore_threads):
    import os

    expected_default = max(1, min(os.cpu_count() or 1, 8))
    assert runtime.configure_threads() == expected_default
    assert torch.get_num_threads() == expected_default

    clean_env.setenv("NBGRADER_EXECUTION", "validate")
    assert runtime.configure_threads() == 1
    assert torch.get_num_threads() == 1

    clean_env.setenv(runtime.THREADS_ENV, "2")  # the explicit setting wins, even when grading
    assert runtime.configure_threads() == 2
    assert torch.get_num_threads() == 2

    clean_env.setenv(runtime.THREADS_ENV, "0")  # never below one thread
    assert runtime.configure_threads() == 1


def test_setup_seeds_and_reports(clean_env, restore_threads, capsys):
    device = runtime.setup(seed=5)
    a = torch.rand(3)
    runtime.setup(seed=5, verbose=False)
    assert torch.equal(a, torch.rand(3))
    assert isinstance(device, torch.device)
    out = capsys.readouterr().out
    assert "full mode" in out and out.count("\n") == 1


