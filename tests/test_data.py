"""gradcam_course.data: the one rule every loader follows (modes and the fallback)."""

from __future__ import annotations

import pytest

from gradcam_course import data

# --------------------------------------------------------------------------- data: modes

def test_resolve_mode_default_comes_from_the_environment(monkeypatch):
    monkeypatch.delenv(data.MODE_ENV, raising=False)
    assert data.resolve_mode() == "auto"
    monkeypatch.setenv(data.MODE_ENV, "offline")
    assert data.resolve_mode() == "offline"
    monkeypatch.setenv(data.MODE_ENV, "  Real ")
    assert data.resolve_mode() == "real"
    # the argument wins over the environment
    assert data.resolve_mode("offline") == "offline"
    assert data.resolve_mode("AUTO") == "auto"


@pytest.mark.parametrize("where", ["argument", "environment"])
def test_resolve_mode_rejects_an_unknown_mode(monkeypatch, where):
    if where == "environment":
        monkeypatch.setenv(data.MODE_ENV, "online")
        call = lambda: data.resolve_mode()  # noqa: E731
    else:
        monkeypatch.delenv(data.MODE_ENV, raising=False)
        call = lambda: data.resolve_mode("online")  # noqa: E731
    with pytest.raises(ValueError) as info:
        call()
    message = str(info.value)
    assert "online" in message
    for mode in ("auto", "real", "offline"):
        assert f"'{mode}'" in message
    assert data.MODE_ENV in message


