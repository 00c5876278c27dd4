"""gradcam_course.mnist: the offline digits, the real MNIST loader and LeNet. The real loader is
exercised on tiny files written in MNIST's own IDX format, so torchvision finds them and
downloads nothing."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from gradcam_course import data, mnist, runtime
from gradcam_course.mnist import LeNet

N_DIGITS = 1797  # scikit-learn's load_digits


@pytest.fixture(scope="module")
def offline_splits():
    return mnist.load_offline_digits(seed=0)


# --------------------------------------------------------------------------- data: offline digits

def test_digits_as_mnist_shape_range_and_border():
    from sklearn.datasets import load_digits

    images = load_digits().images[:25]
    x = mnist.digits_as_mnist(images)
    assert isinstance(x, torch.Tensor) and x.dtype == torch.float32
    assert x.shape == (25, 1, 28, 28)
    assert x.min() >= 0.0 and x.max() <= 1.0
    border = torch.ones(28, 28, dtype=torch.bool)
    border[4:24, 4:24] = False
    assert (x[:, :, border] == 0).all(), "the 4-pixel frame around the 20×20 digit must be 0"
    inner = x[:, :, 4:24, 4:24]
    assert (inner.flatten(1).max(dim=1).values > 0.5).all(), "every digit must have ink"


def test_digits_as_mnist_scales_0_to_16_into_0_to_1():
    x = mnist.digits_as_mnist(np.stack([np.full((8, 8), 16.0), np.full((8, 8), 8.0),
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
    a, b, c = (mnist.load_offline_digits(seed=s) for s in (0, 0, 1))
    assert torch.equal(a.test.tensors[1], b.test.tensors[1])
    assert torch.equal(a.test.tensors[0], b.test.tensors[0])
    assert not torch.equal(a.test.tensors[0], c.test.tensors[0])


def test_load_digit_splits_offline_prints_the_banner(capsys):
    splits = mnist.load_digit_splits(mode="offline")
    out = capsys.readouterr().out
    assert splits.source == "digits"
    assert "OFFLINE" in out
    assert "Why: GRADCAM_COURSE_DATA=offline" in out
    assert "MNIST (real)" not in out


def test_load_digit_splits_can_be_silent(capsys):
    mnist.load_digit_splits(mode="offline", verbose=False)
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
    splits = mnist.load_real_mnist(root=root)
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
    splits = mnist.load_digit_splits(mode="real", root=root)
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
    splits = mnist.load_digit_splits()  # mode and root both from the environment
    assert splits.source == "mnist"
    assert str(root) in splits.description
    assert "Data: MNIST (real)" in capsys.readouterr().out


def test_real_mode_without_mnist_fails_with_advice(tmp_path):
    # Attempts the download; offline it fails at once on name resolution.
    with pytest.raises(RuntimeError) as info:
        mnist.load_digit_splits(mode="real", root=tmp_path, verbose=False)
    message = str(info.value)
    assert "mode='offline'" in message
    assert str(tmp_path / "MNIST" / "raw") in message
    assert info.value.__cause__ is not None


def test_auto_mode_without_mnist_falls_back_and_says_why(tmp_path, capsys):
    splits = mnist.load_digit_splits(mode="auto", root=tmp_path)
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
        mnist.load_digit_splits(mode="real", root=root, verbose=False)
    splits = mnist.load_digit_splits(mode="auto", root=root)
    assert splits.source == "digits"
    assert "Why: MNIST could not be downloaded (ValueError" in capsys.readouterr().out


# --------------------------------------------------------------------------- data: DataModule

def test_datamodule_fast_subsets_and_batches():
    dm = mnist.DigitsDataModule(mode="offline", fast=True, verbose=False)
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
    assert mnist.DigitsDataModule(mode="offline").fast is True
    monkeypatch.delenv(runtime.FAST_ENV)
    dm = mnist.DigitsDataModule(mode="offline", verbose=False)
    assert dm.fast is False
    dm.setup()
    assert len(dm.splits.train) == 1078



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




def test_notebooks_handed_out_before_the_move_still_import():
    """Chapter 1's released notebooks imported LeNet from models and the loaders from data."""
    from gradcam_course.data import DigitsDataModule as old_datamodule
    from gradcam_course.models import LeNet as old_lenet

    assert old_datamodule is mnist.DigitsDataModule and old_lenet is LeNet
    with pytest.raises(AttributeError, match="no attribute 'no_such_loader'"):
        data.no_such_loader  # noqa: B018
