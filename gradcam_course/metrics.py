"""How good is an explanation? Localisation against ground truth, faithfulness by perturbation, and
the model-randomisation sanity check, shared by the chapters that compare attribution methods.

Chapter 3 has students write the pointing games and chapter 4 insertion/deletion; from then on
the course uses these versions (the hidden tests hold the students' to the same numbers). In
those two chapters the checks refuse these versions and the grader flags their use
(``gradcam_course.instructor.layout.PACKAGE_ANSWERS``).
"""

from __future__ import annotations

import copy
import time
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

TIE_TOL = 1e-6  # pixels within this of a map's maximum count as maxima


def _check_pair(cams: torch.Tensor, masks: torch.Tensor) -> None:
    if cams.shape != masks.shape or cams.dim() != 3:
        raise ValueError(f"cams and masks must both be (N, H, W), got {tuple(cams.shape)} and "
                         f"{tuple(masks.shape)}.")


def pointing_game(cams: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(N,) float: 1.0 when every pixel at the map's maximum lies inside the mask (Zhang et al. 2018).

    Ties: all pixels within 1e-6 of the maximum are maxima, and all must be in the mask, so a
    constant map (every pixel a maximum) never scores a free hit, nor does an empty mask.
    """
    _check_pair(cams, masks)
    flat, inside = cams.flatten(1).float(), masks.flatten(1).bool()
    at_max = flat >= flat.max(dim=1, keepdim=True).values - TIE_TOL
    return (at_max & ~inside).sum(1).eq(0).float()


def energy_pointing_game(cams: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """(N,) float: share of the map's mass inside the mask, Σ cam·mask / Σ cam (Wang et al. 2020);
    0 for an all-zero map. Maps must be non-negative (normalise signed attributions first)."""
    _check_pair(cams, masks)
    flat, inside = cams.flatten(1).float(), masks.flatten(1).float()
    total = flat.sum(1)
    return torch.where(total > 0, (flat * inside).sum(1) / total.clamp_min(1e-12),
                       torch.zeros_like(total))


def score_signs(logits: torch.Tensor, target=None) -> torch.Tensor:
    """(N,) ±1: the sign that turns the model's single logit into the score of the class to explain.

    The model returns one logit z per image, (N, 1): "tumour in the centre region". Class 1's
    score is z, class 0's is −z (σ(−z) = 1 − σ(z) is the probability of "normal"). ``target``
    is None (each image's predicted class, z > 0), 0 or 1 for all images, or one 0/1 per image.
    """
    if logits.dim() != 2 or logits.shape[1] != 1:
        raise ValueError(f"The model must return one logit per image, (N, 1); got {tuple(logits.shape)}.")
    n = logits.shape[0]
    if target is None:
        classes = (logits[:, 0] > 0).long()
    else:
        classes = torch.as_tensor(target, dtype=torch.long, device=logits.device).reshape(-1)
        classes = classes.expand(n) if classes.numel() == 1 else classes
        if classes.numel() != n:
            raise ValueError(f"target has {classes.numel()} entries for {n} images: give one 0/1 "
                             "per image, a single 0/1 for all, or None for the predicted class.")
    if ((classes != 0) & (classes != 1)).any():
        raise ValueError(f"target must be 0 (normal) or 1 (tumour), got {classes.tolist()}.")
    return classes.float() * 2 - 1


def target_probabilities(logits: torch.Tensor, target=None) -> tuple[torch.Tensor, Callable]:
    """The class each image is explained for, as a function from logits to its probability.

    One logit per image (N, 1): class 1 is σ(z), class 0 is σ(−z); ``target`` None means the
    predicted class (z > 0). Several logits (N, C): the softmax probability of ``target``
    (None: the argmax). ``target`` may be an int or one entry per image. Returns the (N,) target
    classes and ``prob(logits) -> (N,)`` for logits of perturbed copies of the same N images.
    """
    n, c = logits.shape
    if c == 1:
        signs = score_signs(logits, target)
        return (signs > 0).long(), lambda z: torch.sigmoid(z[:, 0] * signs.repeat(len(z) // n))
    if target is None:
        classes = logits.argmax(1)
    else:
        classes = torch.as_tensor(target, dtype=torch.long, device=logits.device).reshape(-1)
        classes = classes.expand(n) if classes.numel() == 1 else classes
        if classes.numel() != n:
            raise ValueError(f"target has {classes.numel()} entries for {n} images.")
    if ((classes < 0) | (classes >= c)).any():
        raise ValueError(f"target must lie in [0, {c - 1}], got {classes.tolist()}.")
    return classes, lambda z: z.softmax(1).gather(1, classes.repeat(len(z) // n)[:, None])[:, 0]


def insertion_deletion(model: nn.Module, images: torch.Tensor, maps: torch.Tensor, steps: int = 16,
                       baseline: float = 0.0, target=None, batch_size: int = 256) -> dict:
    """Insertion and deletion curves (Petsiuk et al. 2018) and their areas, batched.

    Pixels are ranked by ``maps`` (N, H, W), highest first (ties: the lower flat index first). At
    step k = 0 … ``steps`` the top n_k = (k · H·W) // steps pixels (all channels) are *deleted*
    (set to ``baseline``) from the image, or *inserted* into an all-``baseline`` image, and the
    curve records the target class's probability (see :func:`target_probabilities`). AUC: the
    trapezoid rule over the fractions k / steps. A faithful map has a high insertion AUC (its top
    pixels alone restore the decision) and a low deletion AUC (removing them destroys it).

    Returns ``{"fractions": (steps+1,), "insertion": (N, steps+1), "deletion": (N, steps+1),
    "insertion_auc": (N,), "deletion_auc": (N,)}``.
    """
    n, c, h, w = images.shape
    if tuple(maps.shape) != (n, h, w):
        raise ValueError(f"maps must be (N, H, W) = {(n, h, w)}, got {tuple(maps.shape)}.")
    with torch.inference_mode():
        _, prob = target_probabilities(model(images), target)
        order = torch.argsort(maps.reshape(n, -1).to(images.device), dim=1, descending=True,
                              stable=True)
        rank = torch.empty_like(order)
        rank.scatter_(1, order, torch.arange(h * w, device=images.device).expand(n, -1).contiguous())
        counts = [(k * h * w) // steps for k in range(steps + 1)]
        shown = torch.stack([rank < m for m in counts]).view(steps + 1, n, 1, h, w)
        ref = torch.full_like(images, baseline)
        per_batch = max(1, batch_size // n)
        curves = {}
        for name, keep in (("insertion", shown), ("deletion", ~shown)):
            probs = []
            for start in range(0, steps + 1, per_batch):
                m = keep[start:start + per_batch]
                batch = torch.where(m, images[None], ref[None]).reshape(-1, c, h, w)
                probs.append(prob(model(batch)).view(len(m), n))
            curves[name] = torch.cat(probs).T.contiguous()
        fractions = torch.arange(steps + 1, dtype=images.dtype, device=images.device) / steps
    return {"fractions": fractions, **curves,
            "insertion_auc": torch.trapezoid(curves["insertion"], fractions, dim=1),
            "deletion_auc": torch.trapezoid(curves["deletion"], fractions, dim=1)}


def rank_correlation(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """(N,) Spearman rank correlation between map a[i] and map b[i] (ties get their mean rank);
    0 where a map is constant."""
    if a.shape != b.shape:
        raise ValueError(f"maps differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")
    from scipy.stats import rankdata

    ra = torch.from_numpy(rankdata(a.flatten(1).double().cpu().numpy(), axis=1))
    rb = torch.from_numpy(rankdata(b.flatten(1).double().cpu().numpy(), axis=1))
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    denom = ra.norm(dim=1) * rb.norm(dim=1)
    return torch.where(denom > 0, (ra * rb).sum(1) / denom.clamp_min(1e-12),
                       torch.zeros_like(denom)).float()


def cascading_randomization(model: nn.Module, layers: Sequence[str], seed: int = 0
                            ) -> Iterator[tuple[str, nn.Module]]:
    """The model-parameter randomisation test of Adebayo et al. (2018), cascading version.

    Yields ``(layer name, model)`` with the parameters of ``layers[0]``, then also ``layers[1]``
    and so on (give them from the output towards the input) re-initialised by their own
    ``reset_parameters``, on a deep copy: the original model is untouched. BatchNorm running
    statistics are reset too. An explanation that still looks the same after the top layers are
    random does not depend on what the model learned.
    """
    randomized = copy.deepcopy(model)
    modules = dict(randomized.named_modules())
    torch.manual_seed(seed)
    for name in layers:
        if name not in modules:
            raise ValueError(f"No layer {name!r} in the model; layers: {list(modules)[1:12]} …")
        for m in modules[name].modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
            if hasattr(m, "reset_running_stats"):
                m.reset_running_stats()
        yield name, randomized


def explain_batched(methods: dict[str, Callable[[torch.Tensor], torch.Tensor]], images: torch.Tensor,
                    device: torch.device | str | None = None, batch_size: int = 32
                    ) -> tuple[dict[str, torch.Tensor], dict[str, float]]:
    """Run each explanation method on ``images``, ``batch_size`` at a time on ``device``.

    Returns ``({name: (N, H, W) maps on the CPU}, {name: wall seconds per image})``; copying
    each batch's maps to the CPU waits for a GPU to finish, so the times are real."""
    maps, seconds = {}, {}
    for name, method in methods.items():
        start = time.perf_counter()
        maps[name] = torch.cat([method(images[i:i + batch_size].to(device)).cpu()
                                for i in range(0, len(images), batch_size)])
        seconds[name] = (time.perf_counter() - start) / len(images)
    return maps, seconds
