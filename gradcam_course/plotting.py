"""Figures shared by the chapters: one colormap, titled panels, no hidden state."""

from __future__ import annotations

from typing import Sequence


import matplotlib.pyplot as plt
import numpy as np
import torch

#: One colormap for every heatmap in the course: red = strong evidence, blue = none.
CAM_CMAP = "jet"
CAM_ALPHA = 0.5


def to_numpy_image(image) -> np.ndarray:
    """(C, H, W) or (H, W) tensor/array → (H, W) or (H, W, 3) float array for imshow."""
    if isinstance(image, torch.Tensor):
        image = image.detach().cpu().float().numpy()
    image = np.asarray(image, dtype=np.float32)
    if image.ndim == 3 and image.shape[0] in (1, 3):
        image = np.moveaxis(image, 0, -1)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    return image


def to_numpy_cam(cam) -> np.ndarray:
    if isinstance(cam, torch.Tensor):
        cam = cam.detach().cpu().float().numpy()
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim == 3 and cam.shape[0] == 1:
        cam = cam[0]
    if cam.ndim != 2:
        raise ValueError(f"A heatmap must be 2-D (H, W), got shape {cam.shape}.")
    return cam


def show_cam(ax, image, cam=None, title: str | None = None, alpha: float = CAM_ALPHA):
    """Draw an image (grey or RGB) with an optional heatmap on top; returns the heatmap artist."""
    img = to_numpy_image(image)
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None)
    artist = None
    if cam is not None:
        cam = to_numpy_cam(cam)
        if cam.shape != img.shape[:2]:
            raise ValueError(
                f"Heatmap {cam.shape} and image {img.shape[:2]} differ in size: upsample the "
                "map to the image size first."
            )
        artist = ax.imshow(cam, cmap=CAM_CMAP, alpha=alpha, vmin=0.0, vmax=1.0)
    if title:
        ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])
    return artist


def plot_cam_grid(images, cams, titles: Sequence[str] | None = None, ncols: int = 8,
                  suptitle: str | None = None, panel_size: float = 1.6):
    """A grid of images, each with its heatmap, and one shared colorbar."""
    n = len(images)
    if len(cams) != n:
        raise ValueError(f"{n} images but {len(cams)} heatmaps.")
    ncols = min(ncols, n)
    nrows = int(np.ceil(n / ncols))
    fig, axes = plt.subplots(nrows, ncols, figsize=(panel_size * ncols, panel_size * nrows + 0.6),
                             squeeze=False, layout="constrained")
    artist = None
    for i, ax in enumerate(axes.flat):
        if i >= n:
            ax.axis("off")
            continue
        artist = show_cam(ax, images[i], cams[i], titles[i] if titles else None)
    if artist is not None:
        fig.colorbar(artist, ax=axes, shrink=0.8, label="Grad-CAM (normalised)")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_class_maps(image, cams, class_titles: Sequence[str], suptitle: str | None = None):
    """One image, its heatmap for several classes side by side, after the plain image."""
    k = len(cams)
    fig, axes = plt.subplots(1, k + 1, figsize=(2.6 * (k + 1), 3.0), layout="constrained")
    show_cam(axes[0], image, None, "input")
    artist = None
    for ax, cam, title in zip(axes[1:], cams, class_titles):
        artist = show_cam(ax, image, cam, title)
    if artist is not None:
        fig.colorbar(artist, ax=axes, shrink=0.8, label="Grad-CAM (normalised)")
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def plot_training_curves(history: Sequence[dict], title: str = "Training"):
    """Loss and accuracy per epoch from :class:`gradcam_course.training.History`."""
    epochs = [h["epoch"] + 1 for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.2), layout="constrained")
    for key, label in (("train_loss", "train"), ("val_loss", "validation")):
        if history and key in history[0]:
            ax_loss.plot(epochs, [h[key] for h in history], marker="o", label=label)
    for key, label in (("train_acc", "train"), ("val_acc", "validation")):
        if history and key in history[0]:
            ax_acc.plot(epochs, [h[key] for h in history], marker="o", label=label)
    ax_loss.set(xlabel="epoch", ylabel="cross-entropy loss", title="Loss")
    ax_acc.set(xlabel="epoch", ylabel="accuracy", title="Accuracy", ylim=(0, 1.02))
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return fig


def plot_confusion(y_true, y_pred, classes: Sequence[str], title: str = "Confusion matrix"):
    """Counts of (true, predicted) pairs, rows = truth, with the counts written in the cells."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    k = len(classes)
    counts = np.zeros((k, k), dtype=int)
    np.add.at(counts, (y_true, y_pred), 1)
    fig, ax = plt.subplots(figsize=(3.6, 3.2), layout="constrained")
    ax.imshow(counts, cmap="Blues")
    for (i, j), n in np.ndenumerate(counts):
        ax.text(j, i, str(n), ha="center", va="center",
                color="white" if n > counts.max() / 2 else "black")
    ax.set(xticks=range(k), yticks=range(k), xticklabels=classes, yticklabels=classes,
           xlabel="predicted", ylabel="true", title=title)
    return fig


def method_colors(n: int) -> np.ndarray:
    """One colour per method, the same in every figure of a comparison (tab10)."""
    return plt.get_cmap("tab10")(np.arange(n) % 10)


def plot_metric_bars(table, metrics: Sequence[str], title: str, unit_interval: Sequence[str] = ()):
    """One bar chart per metric (a column of ``table``), one bar per method (its rows).

    Metrics named in ``unit_interval`` get the axis [0, 1]; the others keep their own scale."""
    colors = method_colors(len(table))
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.4 * len(metrics), 3.8), squeeze=False,
                             layout="constrained")
    for ax, metric in zip(axes[0], metrics):
        ax.bar(range(len(table)), table[metric], color=colors)
        ax.set_xticks(range(len(table)), table.index, rotation=40, ha="right", fontsize=8)
        ax.set_title(metric)
        if metric in unit_interval:
            ax.set_ylim(0, 1)
        ax.axhline(0, color="grey", lw=0.6)
    fig.suptitle(title)
    return fig


def plot_sanity_check(correlation: dict, stages: Sequence[str]):
    """The model-randomisation sanity check: per method, the rank correlation of its maps with
    the trained model's after each cumulative re-initialisation (``stages``, output first)."""
    fig, ax = plt.subplots(figsize=(7.5, 3.8), layout="constrained")
    steps = ["trained"] + [f"+{stage}" for stage in stages]
    for color, (name, values) in zip(method_colors(len(correlation)), correlation.items()):
        ax.plot(steps, values, marker="o", color=color, label=name)
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_ylabel("Spearman correlation with the trained model's map")
    ax.set_xlabel("layers re-initialised, cumulatively from the output")
    ax.set_title("Model-randomisation sanity check")
    ax.legend(fontsize=8, ncols=2 if len(correlation) > 5 else 1)
    return fig
