"""gradcam_course.plotting: overlays, grids, training curves, comparison figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402

from gradcam_course.plotting import (  # noqa: E402
    CAM_ALPHA, CAM_CMAP, plot_cam_grid, plot_class_maps, plot_training_curves, show_cam)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# --------------------------------------------------------------------------- plotting

def _image_cam(h=28, w=28, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(1, h, w, generator=g), torch.rand(h, w, generator=g)


def test_show_cam_overlays_the_heatmap():
    image, cam = _image_cam()
    fig, ax = plt.subplots()
    artist = show_cam(ax, image, cam, title="seven")
    assert isinstance(artist, AxesImage)
    assert len(ax.get_images()) == 2
    assert ax.get_title() == "seven"
    assert artist.get_cmap().name == CAM_CMAP
    assert artist.get_alpha() == CAM_ALPHA
    assert artist.get_clim() == (0.0, 1.0)
    np.testing.assert_allclose(artist.get_array(), cam.numpy())
    assert ax.get_images()[0].get_array().shape == (28, 28)
    assert list(ax.get_xticks()) == [] and list(ax.get_yticks()) == []


def test_show_cam_without_a_heatmap_and_with_rgb():
    fig, (a, b) = plt.subplots(1, 2)
    image, _ = _image_cam()
    assert show_cam(a, image) is None
    assert len(a.get_images()) == 1 and a.get_title() == ""
    rgb = torch.rand(3, 20, 30)
    artist = show_cam(b, rgb, np.zeros((1, 20, 30)), title="rgb")
    assert artist is not None and b.get_images()[0].get_array().shape == (20, 30, 3)


def test_show_cam_rejects_mismatched_sizes():
    fig, ax = plt.subplots()
    image, _ = _image_cam()
    with pytest.raises(ValueError, match="upsample"):
        show_cam(ax, image, torch.rand(8, 8))
    with pytest.raises(ValueError, match="2-D"):
        show_cam(ax, image, torch.rand(2, 28, 28))


def test_plot_cam_grid():
    n, ncols = 10, 4
    images = torch.rand(n, 1, 28, 28)
    cams = torch.rand(n, 28, 28)
    titles = [f"img {i}" for i in range(n)]
    fig = plot_cam_grid(images, cams, titles, ncols=ncols, suptitle="grid")
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    colorbars = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert len(panels) == 3 * ncols and len(colorbars) == 1
    assert [ax.get_title() for ax in panels[:n]] == titles
    assert all(len(ax.get_images()) == 2 for ax in panels[:n])
    assert all(not ax.axison for ax in panels[n:])  # the two spare cells are blank
    assert fig._suptitle.get_text() == "grid"


def test_plot_cam_grid_rejects_a_count_mismatch():
    with pytest.raises(ValueError, match="3 images but 2 heatmaps"):
        plot_cam_grid(torch.rand(3, 1, 28, 28), torch.rand(2, 28, 28))


def test_plot_class_maps():
    image, _ = _image_cam()
    cams = torch.rand(3, 28, 28)
    fig = plot_class_maps(image, cams, ["class 1", "class 4", "class 7"], suptitle="one image")
    assert isinstance(fig, Figure)
    panels = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(panels) == 4 and len(fig.axes) == 5
    assert [ax.get_title() for ax in panels] == ["input", "class 1", "class 4", "class 7"]
    assert [len(ax.get_images()) for ax in panels] == [1, 2, 2, 2]
    assert fig._suptitle.get_text() == "one image"


def test_plot_training_curves():
    history = [{"epoch": e, "train_loss": 2.0 - e, "val_loss": 2.1 - e,
                "train_acc": 0.3 + 0.2 * e, "val_acc": 0.25 + 0.2 * e} for e in range(3)]
    fig = plot_training_curves(history, title="LeNet")
    assert isinstance(fig, Figure)
    ax_loss, ax_acc = fig.axes
    assert ax_loss.get_title() == "Loss" and ax_acc.get_title() == "Accuracy"
    assert fig._suptitle.get_text() == "LeNet"
    for ax, key in ((ax_loss, "loss"), (ax_acc, "acc")):
        lines = ax.get_lines()
        assert [line.get_label() for line in lines] == ["train", "validation"]
        assert list(lines[0].get_xdata()) == [1, 2, 3]
        assert list(lines[0].get_ydata()) == [h[f"train_{key}"] for h in history]
        assert list(lines[1].get_ydata()) == [h[f"val_{key}"] for h in history]
    assert ax_acc.get_ylim() == (0, 1.02)



def test_comparison_figures_keep_one_colour_per_method():
    import pandas as pd

    from gradcam_course.plotting import method_colors, plot_metric_bars, plot_sanity_check

    table = pd.DataFrame({"pointing game": [0.4, 0.05], "ROAD": [0.1, -0.02]},
                         index=["Grad-CAM", "random map"])
    fig = plot_metric_bars(table, ["pointing game", "ROAD"], "Comparison", unit_interval=["pointing game"])
    ax_pg, ax_road = fig.axes
    assert [round(p.get_height(), 2) for p in ax_pg.patches] == [0.4, 0.05]
    assert ax_pg.get_ylim() == (0, 1) and ax_road.get_ylim()[0] < 0  # ROAD keeps its sign
    assert [t.get_text() for t in ax_pg.get_xticklabels()] == ["Grad-CAM", "random map"]
    assert tuple(ax_pg.patches[1].get_facecolor()) == tuple(method_colors(2)[1])
    fig = plot_sanity_check({"Grad-CAM": [1.0, 0.2, 0.0], "EigenCAM": [1.0, 1.0, 0.5]}, ["fc", "layer4"])
    lines = fig.axes[0].get_lines()[:2]
    assert [line.get_label() for line in lines] == ["Grad-CAM", "EigenCAM"]
    assert list(lines[0].get_xdata()) == ["trained", "+fc", "+layer4"]
    assert tuple(lines[1].get_color()) == tuple(method_colors(2)[1])
