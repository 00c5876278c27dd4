"""Chapter 1's data and model: MNIST (offline: scikit-learn's digits) and LeNet-5.

``DigitsDataModule`` loads MNIST through torchvision when it can be downloaded and otherwise
scikit-learn's ``load_digits`` (real handwriting, 8×8, upsampled to MNIST's 28×28 layout), with
the course's one fallback rule (:func:`gradcam_course.data.real_or_offline`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import lightning as L
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .data import banner, data_dir, real_or_offline, subset
from .runtime import fast_mode


@dataclass
class DigitSplits:
    """Train/val/test tensors of 1×28×28 images in [0, 1] with integer labels."""

    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    source: str  # "mnist" or "digits"
    description: str

    @property
    def classes(self) -> list[str]:
        return [str(i) for i in range(10)]


def _mnist_tensors(ds) -> tuple[torch.Tensor, torch.Tensor]:
    # torchvision keeps the whole split as a uint8 tensor; converting once is far faster
    # than a PIL transform per item.
    return ds.data.unsqueeze(1).float().div_(255.0), ds.targets.long()


def load_real_mnist(root: str | os.PathLike | None = None, val_size: int = 5000,
                    seed: int = 0) -> DigitSplits:
    """torchvision's MNIST (downloads into ``root/MNIST/raw`` unless the files are there)."""
    from torchvision.datasets import MNIST

    root = data_dir(root)
    train_full = MNIST(str(root), train=True, download=True)
    test = MNIST(str(root), train=False, download=True)
    x, y = _mnist_tensors(train_full)
    xt, yt = _mnist_tensors(test)
    val_size = min(val_size, len(x) // 5)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    val_idx, train_idx = perm[:val_size], perm[val_size:]
    return DigitSplits(
        TensorDataset(x[train_idx], y[train_idx]),
        TensorDataset(x[val_idx], y[val_idx]),
        TensorDataset(xt, yt),
        source="mnist",
        description=f"MNIST from torchvision ({len(train_idx)} train / {val_size} val / "
        f"{len(xt)} test images of 28×28) in {root}",
    )


def digits_as_mnist(images: np.ndarray) -> torch.Tensor:
    """scikit-learn's 8×8 digits (values 0..16) → MNIST-like 1×28×28 images in [0, 1].

    MNIST digits sit in a 20×20 box centred in a 28×28 frame, so the 8×8 image is upsampled
    bilinearly to 20×20 and padded by 4 pixels on each side.
    """
    x = torch.as_tensor(images, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
    x = F.interpolate(x, size=(20, 20), mode="bilinear", align_corners=False)
    return F.pad(x, (4, 4, 4, 4)).clamp_(0.0, 1.0)


def load_offline_digits(seed: int = 0) -> DigitSplits:
    """scikit-learn's ``load_digits``: real handwriting that ships with scikit-learn."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits_as_mnist(digits.images)
    y = torch.as_tensor(digits.target, dtype=torch.long)
    idx = np.arange(len(y))
    train_idx, rest = train_test_split(idx, test_size=0.4, stratify=y.numpy(), random_state=seed)
    val_idx, test_idx = train_test_split(rest, test_size=0.5, stratify=y.numpy()[rest],
                                         random_state=seed)
    return DigitSplits(
        TensorDataset(x[train_idx], y[train_idx]),
        TensorDataset(x[val_idx], y[val_idx]),
        TensorDataset(x[test_idx], y[test_idx]),
        source="digits",
        description=f"scikit-learn digits ({len(train_idx)} train / {len(val_idx)} val / "
        f"{len(test_idx)} test images, 8×8 upsampled to 28×28)",
    )


def load_digit_splits(mode: str | None = None, root: str | os.PathLike | None = None,
                      seed: int = 0, verbose: bool = True) -> DigitSplits:
    """MNIST when reachable, otherwise scikit-learn digits; prints which and why."""
    splits, reason = real_or_offline(
        mode, lambda: load_real_mnist(root, seed=seed), lambda: load_offline_digits(seed=seed),
        what="MNIST",
        advice=f"Check the internet connection, or place the four MNIST files in "
               f"{data_dir(root) / 'MNIST' / 'raw'}, or use mode='offline' for scikit-learn's digits.")
    if verbose:
        if splits.source == "mnist":
            print(banner("Data: MNIST (real)", splits.description))
        else:
            print(banner("Data: OFFLINE fallback, scikit-learn digits",
                         f"{splits.description}\nWhy: {reason}"))
    return splits



class DigitsDataModule(L.LightningDataModule):
    """MNIST (or the offline digits) as a LightningDataModule.

    In fast mode (grading, tests) the splits are cut to a few hundred images so that one
    epoch takes well under a second.
    """

    def __init__(self, mode: str | None = None, root: str | os.PathLike | None = None,
                 batch_size: int = 64, fast: bool | None = None, seed: int = 0,
                 verbose: bool = True):
        super().__init__()
        self.mode, self.root, self.batch_size, self.seed = mode, root, batch_size, seed
        self.fast = fast_mode() if fast is None else fast
        self.verbose = verbose
        self.splits: DigitSplits | None = None

    def setup(self, stage: str | None = None) -> None:
        if self.splits is not None:
            return
        splits = load_digit_splits(self.mode, self.root, seed=self.seed, verbose=self.verbose)
        if self.fast:
            splits.train = subset(splits.train, 512, self.seed)
            splits.val = subset(splits.val, 128, self.seed)
            splits.test = subset(splits.test, 256, self.seed)
        self.splits = splits

    @property
    def source(self) -> str:
        self.setup()
        return self.splits.source

    def _loader(self, ds, shuffle=False):
        return DataLoader(ds, batch_size=self.batch_size, shuffle=shuffle,
                          generator=torch.Generator().manual_seed(self.seed) if shuffle else None)

    def train_dataloader(self):
        return self._loader(self.splits.train, shuffle=True)

    def val_dataloader(self):
        return self._loader(self.splits.val)

    def test_dataloader(self):
        return self._loader(self.splits.test)


class LeNet(nn.Module):
    """LeNet-5 as in the MLI tutorial: two conv layers and three linear layers.

    28×28 input → conv1 (6×24×24) → pool → conv2 (16×8×8) → pool → 16·4·4 → 120 → 84 → 10.
    Every step is a named module so that any layer can be hooked; ``model.conv2`` is the
    last conv layer, whose 8×8 output is the usual Grad-CAM target. ReLUs are not in-place
    here; chapter 1 shows separately what an in-place ReLU does to a hook.
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 6, kernel_size=5)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(6, 16, kernel_size=5)
        self.relu2 = nn.ReLU()
        self.pool2 = nn.MaxPool2d(2)
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(16 * 4 * 4, 120)
        self.relu3 = nn.ReLU()
        self.fc2 = nn.Linear(120, 84)
        self.relu4 = nn.ReLU()
        self.fc3 = nn.Linear(84, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(self.relu1(self.conv1(x)))
        return self.pool2(self.relu2(self.conv2(x)))

    def classifier(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu3(self.fc1(self.flatten(x)))
        return self.fc3(self.relu4(self.fc2(x)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[-2:] != (28, 28):
            raise ValueError(
                f"LeNet expects a batch of shape (N, C, 28, 28), got {tuple(x.shape)}; "
                "add a batch dimension with x.unsqueeze(0) for a single image."
            )
        return self.classifier(self.features(x))
