"""What the hidden checks of every chapter share: strict tensor comparison, hook counting."""

from __future__ import annotations

import torch


def assert_tensor(name, got, expected, atol=1e-5, hint=""):
    """A real torch.Tensor (not a subclass that lies in __eq__), same shape, finite, close."""
    assert type(got) is torch.Tensor, f"{name} must be a torch.Tensor, got {type(got).__name__}."
    assert tuple(got.shape) == tuple(expected.shape), (
        f"{name} has shape {tuple(got.shape)}, expected {tuple(expected.shape)}. {hint}")
    got = got.detach().float().cpu()
    assert bool(torch.isfinite(got).all()), f"{name} contains NaN or inf. {hint}"
    diff = float((got - expected.detach().float().cpu()).abs().max())
    assert diff <= atol, f"{name} differs from the reference by {diff:.3g} (max abs). {hint}"


def hook_count(model):
    """Hooks of every kind on every module of the model."""
    count = 0
    for m in model.modules():
        count += len(m._forward_hooks) + len(m._forward_pre_hooks)
        count += len(m._backward_hooks) + len(getattr(m, "_backward_pre_hooks", {}))
    return count
