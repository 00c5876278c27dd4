"""Unit tests of the helper package ``gradcam_course``: data, runtime, models, training,
plotting and grading. Everything runs offline; the real MNIST loader is exercised on tiny
files written in MNIST's own IDX format, so torchvision finds them and downloads nothing."""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.image import AxesImage  # noqa: E402
from torch.utils.data import TensorDataset  # noqa: E402

from gradcam_course import data, grading, runtime  # noqa: E402
from gradcam_course.models import LeNet  # noqa: E402
from gradcam_course.plotting import (  # noqa: E402
    CAM_ALPHA, CAM_CMAP, plot_cam_grid, plot_class_maps, plot_training_curves, show_cam)
from gradcam_course.training import (  # noqa: E402
    LitClassifier, TrainingResult, predict, train_classifier)

ROOT = Path(__file__).resolve().parent.parent
N_DIGITS = 1797  # scikit-learn's load_digits


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def offline_splits():
    return data.load_offline_digits(seed=0)


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


# --------------------------------------------------------------------------- data: offline digits

def test_digits_as_mnist_shape_range_and_border():
    from sklearn.datasets import load_digits

    images = load_digits().images[:25]
    x = data.digits_as_mnist(images)
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
    assert x.shape == (25, 1, 28, 28)
    assert x.min() >= 0.0 and x.max() <= 1.0
    border = torch.ones(28, 28, dtype=torch.bool)
    border[4:24, 4:24] = False
    assert (x[:, :, border] == 0).all(), "the 4-pixel frame around the 20×20 digit must be 0"
    inner = x[:, :, 4:24, 4:24]
    assert (inner.flatten(1).max(dim=1).values > 0.5).all(), "every digit must have ink"


def test_digits_as_mnist_scales_0_to_16_into_0_to_1():
    x = data.digits_as_mnist(np.stack([np.full((8, 8), 16.0), np.full((8, 8), 8.0),
                                       np.zeros((8, 8))]))
    torch.testing.assert_close(x[0, 0, 4:24, 4:24], torch.ones(20, 20))
    torch.testing.assert_close(x[1, 0, 4:24, 4:24], torch.full((20, 20), 0.5))
    assert (x[2] == 0).all()


def test_load_offline_digits_splits(offline_splits):
    s = offline_splits
    assert s.source == "digits"
    sizes = [len(s.train), len(s.val), len(s.test)]
    assert sum(sizes) == N_DIGITS
    assert sizes == [1078, 359, 360]  # 60 / 20 / 20
    assert s.classes == [str(i) for i in range(10)]
    all_y = torch.cat([s.train.tensors[1], s.val.tensors[1], s.test.tensors[1]])
    total = torch.bincount(all_y, minlength=10)
    for split in (s.train, s.val, s.test):
        x, y = split.tensors
        assert x.shape[1:] == (1, 28, 28) and x.dtype == torch.float32
        assert y.dtype == torch.long
        assert set(y.tolist()) == set(range(10))
        # stratified: each class keeps its share of the whole set (within one image)
        counts = torch.bincount(y, minlength=10).double()
        expected = total.double() * len(split) / N_DIGITS
        assert (counts - expected).abs().max() <= 1.0 + 1e-9, (counts, expected)
    # the splits do not share images
    flat = [tuple(t.flatten().tolist()) for split in (s.train, s.val, s.test)
            for t in split.tensors[0]]
    from sklearn.datasets import load_digits
    distinct = len({tuple(im.flatten().tolist()) for im in load_digits().images})
    assert len(set(flat)) == distinct


def test_load_offline_digits_is_seeded():
    a, b, c = (data.load_offline_digits(seed=s) for s in (0, 0, 1))
    assert torch.equal(a.test.tensors[1], b.test.tensors[1])
    assert torch.equal(a.test.tensors[0], b.test.tensors[0])
    assert not torch.equal(a.test.tensors[0], c.test.tensors[0])


def test_load_digit_splits_offline_prints_the_banner(capsys):
    splits = data.load_digit_splits(mode="offline")
    out = capsys.readouterr().out
    assert splits.source == "digits"
    assert "OFFLINE" in out
    assert "Why: GRADCAM_COURSE_DATA=offline" in out
    assert "MNIST (real)" not in out


def test_load_digit_splits_can_be_silent(capsys):
    data.load_digit_splits(mode="offline", verbose=False)
    assert capsys.readouterr().out == ""


# --------------------------------------------------------------------------- data: real MNIST loader

N_TRAIN, N_TEST = 40, 12


def _write_idx_images(path: Path, images: np.ndarray) -> None:
    n, h, w = images.shape
    path.write_bytes(struct.pack(">IIII", 2051, n, h, w) + images.astype(np.uint8).tobytes())


def _write_idx_labels(path: Path, labels: np.ndarray) -> None:
    path.write_bytes(struct.pack(">II", 2049, len(labels)) + labels.astype(np.uint8).tobytes())


def _fake_images(n: int, seed: int) -> np.ndarray:
    images = np.random.default_rng(seed).integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)  # pixel (0, 0) names the image: splits can be traced back
    return images


@pytest.fixture
def mnist_files(tmp_path):
    """Four uncompressed MNIST IDX files in ``tmp_path/MNIST/raw``, the names torchvision
    checks in ``MNIST._check_exists`` (resources without ``.gz``)."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(3)
    files = {
        "train_x": _fake_images(N_TRAIN, seed=1),
        "train_y": rng.integers(0, 10, N_TRAIN).astype(np.uint8),
        "test_x": _fake_images(N_TEST, seed=2),
        "test_y": rng.integers(0, 10, N_TEST).astype(np.uint8),
    }
    _write_idx_images(raw / "train-images-idx3-ubyte", files["train_x"])
    _write_idx_labels(raw / "train-labels-idx1-ubyte", files["train_y"])
    _write_idx_images(raw / "t10k-images-idx3-ubyte", files["test_x"])
    _write_idx_labels(raw / "t10k-labels-idx1-ubyte", files["test_y"])
    return tmp_path, files


@pytest.fixture
def no_download(monkeypatch):
    """A tripwire, not a fake: any download attempt fails the test."""
    import torchvision.datasets.mnist as tv_mnist

    def tripwire(*args, **kwargs):
        raise AssertionError(f"a download was attempted: {args} {kwargs}")

    monkeypatch.setattr(tv_mnist, "download_and_extract_archive", tripwire)


def _trace(split: TensorDataset, images: np.ndarray, labels: np.ndarray) -> list[int]:
    """Index of each split image in the file; checks pixels (/255) and labels on the way."""
    x, y = split.tensors
    assert x.dtype == torch.float32 and x.shape[1:] == (1, 28, 28)
    assert y.dtype == torch.long
    idx = torch.round(x[:, 0, 0, 0] * 255).long()
    expected = torch.from_numpy(images[idx.numpy()]).float().unsqueeze(1) / 255.0
    torch.testing.assert_close(x, expected, rtol=1e-6, atol=0)
    assert torch.equal(y, torch.from_numpy(labels[idx.numpy()]).long())
    return idx.tolist()


def test_load_real_mnist_reads_the_idx_files(mnist_files, no_download):
    root, f = mnist_files
    splits = data.load_real_mnist(root=root)
    assert splits.source == "mnist"
    val_size = N_TRAIN // 5  # val_size is capped at a fifth of the training images
    assert (len(splits.train), len(splits.val), len(splits.test)) == (
        N_TRAIN - val_size, val_size, N_TEST)
    train_idx = _trace(splits.train, f["train_x"], f["train_y"])
    val_idx = _trace(splits.val, f["train_x"], f["train_y"])
    assert sorted(train_idx + val_idx) == list(range(N_TRAIN)), "train and val must partition"
    # the test split keeps the file's order
    assert _trace(splits.test, f["test_x"], f["test_y"]) == list(range(N_TEST))
    assert f"{N_TRAIN - val_size} train / {val_size} val / {N_TEST} test" in splits.description
    assert not list((root / "MNIST" / "raw").glob("*.gz")), "nothing may be downloaded"


def test_load_digit_splits_real_prints_the_mnist_banner(mnist_files, no_download, capsys):
    root, f = mnist_files
    splits = data.load_digit_splits(mode="real", root=root)
    out = capsys.readouterr().out
    assert splits.source == "mnist"
    assert "Data: MNIST (real)" in out
    assert "OFFLINE" not in out and "Why:" not in out
    assert _trace(splits.test, f["test_x"], f["test_y"]) == list(range(N_TEST))


def test_auto_mode_prefers_mnist_and_data_dir_comes_from_the_environment(
        mnist_files, no_download, monkeypatch, capsys):
    root, _ = mnist_files
    monkeypatch.setenv(data.DIR_ENV, str(root))
    monkeypatch.setenv(data.MODE_ENV, "auto")
    splits = data.load_digit_splits()  # mode and root both from the environment
    assert splits.source == "mnist"
    assert str(root) in splits.description
    assert "Data: MNIST (real)" in capsys.readouterr().out


def test_real_mode_without_mnist_fails_with_advice(tmp_path):
    # Attempts the download; offline it fails at once on name resolution.
    with pytest.raises(RuntimeError) as info:
        data.load_digit_splits(mode="real", root=tmp_path, verbose=False)
    message = str(info.value)
    assert "mode='offline'" in message
    assert str(tmp_path / "MNIST" / "raw") in message
    assert info.value.__cause__ is not None


def test_auto_mode_without_mnist_falls_back_and_says_why(tmp_path, capsys):
    splits = data.load_digit_splits(mode="auto", root=tmp_path)
    out = capsys.readouterr().out
    assert splits.source == "digits"
    assert "OFFLINE" in out
    assert "Why: MNIST could not be downloaded" in out


def test_corrupt_mnist_files_fail_in_real_mode_and_fall_back_in_auto(mnist_files, no_download,
                                                                    capsys):
    root, _ = mnist_files
    # a label file where an image file belongs: present (so no download), but unreadable
    _write_idx_labels(root / "MNIST" / "raw" / "train-images-idx3-ubyte", np.zeros(5, np.uint8))
    with pytest.raises(RuntimeError, match="mode='offline'"):
        data.load_digit_splits(mode="real", root=root, verbose=False)
    splits = data.load_digit_splits(mode="auto", root=root)
    assert splits.source == "digits"
    assert "Why: MNIST could not be downloaded (ValueError" in capsys.readouterr().out


# --------------------------------------------------------------------------- data: DataModule

def test_datamodule_fast_subsets_and_batches():
    dm = data.DigitsDataModule(mode="offline", fast=True, verbose=False)
    dm.setup()
    assert dm.source == "digits"
    assert (len(dm.splits.train), len(dm.splits.val), len(dm.splits.test)) == (512, 128, 256)
    for loader, n in ((dm.train_dataloader(), 512), (dm.val_dataloader(), 128),
                      (dm.test_dataloader(), 256)):
        seen = 0
        for x, y in loader:
            assert x.shape == (len(y), 1, 28, 28) and x.dtype == torch.float32
            assert y.dtype == torch.long and y.min() >= 0 and y.max() <= 9
            assert len(y) <= dm.batch_size
            seen += len(y)
        assert seen == n
    x, y = next(iter(dm.train_dataloader()))
    assert x.shape == (64, 1, 28, 28) and y.shape == (64,)
    # setup is idempotent and the shuffled order is seeded
    splits = dm.splits
    dm.setup()
    assert dm.splits is splits
    x2, y2 = next(iter(dm.train_dataloader()))
    assert torch.equal(y, y2)


def test_datamodule_fast_defaults_to_fast_mode(monkeypatch):
    monkeypatch.delenv("NBGRADER_EXECUTION", raising=False)
    monkeypatch.setenv(runtime.FAST_ENV, "1")
    assert data.DigitsDataModule(mode="offline").fast is True
    monkeypatch.delenv(runtime.FAST_ENV)
    dm = data.DigitsDataModule(mode="offline", verbose=False)
    assert dm.fast is False
    dm.setup()
    assert len(dm.splits.train) == 1078


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


# --------------------------------------------------------------------------- models

def test_lenet_shapes():
    torch.manual_seed(0)
    model = LeNet().eval()
    captured = {}
    handle = model.conv2.register_forward_hook(lambda m, i, o: captured.setdefault("conv2", o))
    try:
        out = model(torch.rand(5, 1, 28, 28))
    finally:
        handle.remove()
    assert out.shape == (5, 10)
    assert captured["conv2"].shape == (5, 16, 8, 8)
    assert LeNet(num_classes=3, in_channels=2)(torch.rand(2, 2, 28, 28)).shape == (2, 3)


@pytest.mark.parametrize("shape", [(1, 28, 28), (1, 1, 32, 32)])
def test_lenet_rejects_a_wrong_input_shape(shape):
    with pytest.raises(ValueError, match="unsqueeze") as info:
        LeNet()(torch.rand(*shape))
    assert str(tuple(shape)) in str(info.value)


# --------------------------------------------------------------------------- training

@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    lit = LitClassifier(LeNet(), 10)
    dm = data.DigitsDataModule(mode="offline", fast=True, verbose=False)
    result = train_classifier(lit, dm, fast=True, progress_bar=False)
    return lit, dm, result


def test_train_classifier_fast(trained):
    lit, dm, result = trained
    assert isinstance(result, TrainingResult)
    assert 0.0 <= result.test_acc <= 1.0
    assert np.isfinite(result.test_loss) and result.test_loss > 0
    assert result.epochs == 1
    assert len(result.history) == 1
    row = result.history[0]
    assert row["epoch"] == 0
    assert {"val_loss", "val_acc"} <= set(row)
    assert 0.0 <= row["val_acc"] <= 1.0
    assert not lit.training


def test_history_has_this_epochs_train_metrics(trained):
    _, _, result = trained
    row = result.history[0]
    assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= set(row)
    fig = plot_training_curves(result.history)
    assert [len(ax.get_lines()) for ax in fig.axes[:2]] == [2, 2]


def test_predict_returns_logits_in_eval_mode(trained):
    lit, dm, _ = trained
    model = lit.model
    model.train()
    x = dm.splits.test.tensors[0][:37]
    logits = predict(model, x, batch_size=10)
    assert logits.shape == (37, 10)
    assert not logits.requires_grad
    assert not any(m.training for m in model.modules())
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x))


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


# --------------------------------------------------------------------------- grading

def test_course_root_walks_up_from_a_chapter_folder(monkeypatch):
    monkeypatch.delenv(grading.ROOT_ENV, raising=False)
    monkeypatch.chdir(ROOT / "solutions" / "01_mnist_lenet")
    assert grading.course_root() == ROOT
    assert grading.course_root(ROOT / "gradcam_course") == ROOT


def test_course_root_honours_the_environment(monkeypatch, tmp_path):
    other = tmp_path / "course"
    (other / "autograder" / "checks").mkdir(parents=True)
    (other / "autograder" / "reference").mkdir(parents=True)
    monkeypatch.chdir(ROOT / "solutions" / "01_mnist_lenet")
    monkeypatch.setenv(grading.ROOT_ENV, str(other))
    assert grading.course_root() == other.resolve()
    monkeypatch.setenv(grading.ROOT_ENV, str(tmp_path))  # no autograder/ there
    with pytest.raises(FileNotFoundError, match=grading.ROOT_ENV):
        grading.course_root()


def test_course_root_outside_a_course(monkeypatch, tmp_path):
    monkeypatch.delenv(grading.ROOT_ENV, raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(FileNotFoundError, match="No autograder/ folder above"):
        grading.course_root()


@pytest.fixture
def keep_autograder_modules(monkeypatch):
    monkeypatch.setattr(sys, "path", list(sys.path))
    saved = {k: v for k, v in sys.modules.items()
             if k == "autograder" or k.startswith("autograder.")}
    yield
    for name in [k for k in sys.modules if k == "autograder" or k.startswith("autograder.")]:
        del sys.modules[name]
    sys.modules.update(saved)


def test_load_checks(monkeypatch, keep_autograder_modules):
    monkeypatch.delenv(grading.ROOT_ENV, raising=False)
    monkeypatch.chdir(ROOT / "solutions" / "01_mnist_lenet")
    checks = grading.load_checks("ch01_mnist_lenet")
    assert callable(checks.check_weights)
    assert Path(checks.__file__).resolve() == ROOT / "autograder" / "checks" / "ch01_mnist_lenet.py"


def test_load_checks_drops_an_autograder_from_another_course(monkeypatch, tmp_path,
                                                            keep_autograder_modules):
    other = tmp_path / "course"
    for sub in ("checks", "reference"):
        (other / "autograder" / sub).mkdir(parents=True)
        (other / "autograder" / sub / "__init__.py").write_text("")
    (other / "autograder" / "__init__.py").write_text("")
    (other / "autograder" / "checks" / "ch99.py").write_text("WHERE = 'other course'\n")
    import autograder  # the repository's own, already cached  # noqa: F401

    monkeypatch.setenv(grading.ROOT_ENV, str(other))
    module = grading.load_checks("ch99")
    assert module.WHERE == "other course"
    assert Path(sys.modules["autograder"].__file__).resolve().parent.parent == other.resolve()


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
