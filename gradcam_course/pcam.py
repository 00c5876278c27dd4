"""Histology patches for chapter 4: PatchCamelyon (PCam), or synthetic H&E-like patches with tumour masks.

Real: PCam (Veeling et al. 2018), 96×96 RGB patches from lymph-node sections, in six HDF5 files
``camelyonpatch_level_2_split_{train,valid,test}_{x,y}.h5`` (``x``: N×96×96×3 uint8, ``y``:
N×1×1×1 uint8). A patch is labelled positive exactly when its **centre 32×32 region** holds at least
one pixel of tumour tissue, so the centre square is where the evidence must be. The files are
large (the training images alone are 6 GB unpacked): we read a stratified subset **lazily** with
h5py, one patch at a time, never the whole file.

Offline: a seeded generator of H&E-like patches: pink stroma (eosin), small purple nuclei
(haematoxylin), now and then a dense cluster of small round lymphocytes, and tumour as clusters of
larger, darker, irregular nuclei. The label follows PCam's rule (tumour touches the centre 32×32
region; tumour elsewhere in a negative patch is allowed, as in the real data), and every patch has
its tumour mask, so localisation can be measured pixel by pixel.
"""

from __future__ import annotations

import gzip
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import Dataset

from .data import banner, data_dir, real_or_offline
from .runtime import fast_mode
from .training import SplitDataModule

CLASSES = ("normal", "tumour")
PATCH = 96  # PCam's patch side
#: Set to a folder holding the PCam ``.h5`` (or ``.h5.gz``) files to skip the download.
PCAM_DIR_ENV = "GRADCAM_COURSE_PCAM_DIR"
SPLITS = {"train": "train", "val": "valid", "test": "test"}
#: Zenodo record of the PCam files (the dataset's canonical host besides Google Drive).
ZENODO = "https://zenodo.org/records/2546921/files/{name}?download=1"


def h5_name(split: str, part: str) -> str:
    """``camelyonpatch_level_2_split_valid_x.h5`` for split ``val``, part ``x``."""
    return f"camelyonpatch_level_2_split_{SPLITS[split]}_{part}.h5"


def centre_region(size: int = PATCH) -> torch.Tensor:
    """(S, S) bool: the centre square whose tumour content decides the label (32×32 of 96×96)."""
    region = torch.zeros(size, size, dtype=torch.bool)
    lo, hi = size // 3, size - size // 3
    region[lo:hi, lo:hi] = True
    return region


# ---------------------------------------------------------------------------------------------
# Patches in memory (synthetic ones, or a subset read from the HDF5 files)
# ---------------------------------------------------------------------------------------------

@dataclass
class Patches:
    """Patches as tensors: images (N, 3, S, S) uint8, labels (N,) with 1 = tumour in the centre,
    and tumour masks (N, S, S) bool where known (synthetic data), else None."""

    images: torch.Tensor
    labels: torch.Tensor
    masks: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def floats(self, index=slice(None)) -> torch.Tensor:
        """Images in [0, 1], float32: what the models take."""
        return self.images[index].float() / 255.0

    def select(self, index) -> "Patches":
        index = torch.as_tensor(index, dtype=torch.long)
        return Patches(self.images[index], self.labels[index],
                       None if self.masks is None else self.masks[index])

    def counts(self) -> list[int]:
        return torch.bincount(self.labels, minlength=2).tolist()

    def evidence(self) -> torch.Tensor:
        """(N, S, S) bool: where the evidence for "tumour" is. The tumour mask where known; for
        real PCam the centre region of every positive patch (the label is defined by it)."""
        if self.masks is not None:
            return self.masks
        size = self.images.shape[-1]
        return self.labels.bool()[:, None, None] & centre_region(size)[None]

    def dataset(self) -> Dataset:
        return _PatchDataset(self)


class _PatchDataset(Dataset):
    def __init__(self, patches: Patches):
        self.patches = patches

    def __len__(self):
        return len(self.patches)

    def __getitem__(self, i):
        return self.patches.floats(i), self.patches.labels[i].float()


@dataclass
class PCamSplits:
    train: Dataset
    val: Dataset
    test: Patches  # small enough to keep in memory: the chapter explains these patches
    source: str  # "pcam" or "synthetic"
    description: str
    counts: dict[str, list[int]]

    def summary(self) -> str:
        return "\n".join(f"{name:>5}: {sum(c):6d} patches ({c[0]} {CLASSES[0]}, {c[1]} {CLASSES[1]})"
                         for name, c in self.counts.items())


# ---------------------------------------------------------------------------------------------
# Synthetic H&E-like patches
# ---------------------------------------------------------------------------------------------

def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)


def _nuclei(rng: np.random.Generator, size: int, ys, xs, radius: float, irregular: float) -> np.ndarray:
    """Soft coverage in [0, 1] of round (``irregular`` = 0) or ragged nuclei at the given centres."""
    impulses = np.zeros((size, size), np.float32)
    np.add.at(impulses, (np.clip(ys, 0, size - 1), np.clip(xs, 0, size - 1)), 1.0)
    sigma = radius / 1.18  # a Gaussian at half its peak is 1.18 σ from the centre
    density = _blur(impulses, sigma) * (2 * np.pi * sigma ** 2)  # each nucleus peaks at 1
    if irregular:
        density *= 1 + irregular * _blur(rng.normal(0, 1, (size, size)).astype(np.float32), 0.8)
    return np.clip((density - 0.35) / 0.3, 0, 1)  # a soft edge around half height


def _blob(rng: np.random.Generator, size: int, cy: float, cx: float, radius: float) -> np.ndarray:
    """(S, S) bool: an irregular region of about ``radius`` pixels around (cy, cx)."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    r = np.sqrt((yy - cy) ** 2 + (xx - cx) ** 2) / radius
    wobble = _blur(rng.normal(0, 1, (size, size)).astype(np.float32), size / 12)
    wobble /= np.abs(wobble).max() + 1e-6
    return r + 0.35 * wobble < 1


def _synthetic_patch(rng: np.random.Generator, size: int, tumour: str) -> tuple[np.ndarray, np.ndarray]:
    """One patch, (S, S, 3) float in [0, 1], and its tumour mask. ``tumour``: "centre" (a positive),
    "edge" (a negative with tumour away from the centre) or "none"."""
    s = size / PATCH  # the generator is written for 96 px; other sizes scale
    stain = rng.uniform(0.9, 1.1, 3)  # staining varies from slide to slide
    fibres = _blur(rng.normal(0, 1, (size, size)).astype(np.float32), 1.5 * s)
    fibres /= np.abs(fibres).max() + 1e-6
    pale = _blur(rng.normal(0, 1, (size, size)).astype(np.float32), 8 * s) > 0.06 * rng.uniform(0.5, 3)
    stroma = np.array([0.93, 0.64, 0.80], np.float32) + 0.06 * fibres[..., None]
    stroma = np.where(pale[..., None], stroma * 0.4 + 0.6 * np.array([0.97, 0.86, 0.92]), stroma)

    mask = np.zeros((size, size), bool)
    lo, hi = size // 3, size - size // 3
    if tumour != "none":
        for _attempt in range(50):
            radius = rng.uniform(11, 22) * s
            if tumour == "centre":
                cy, cx = rng.uniform(lo - 0.4 * radius, hi + 0.4 * radius, 2)
            else:  # anywhere clear of the centre square (the check below rejects a touch)
                cy, cx = rng.uniform(0, size, 2)
                if max(abs(cy - size / 2), abs(cx - size / 2)) < (hi - lo) / 2 + 0.8 * radius:
                    continue
            mask = _blob(rng, size, cy, cx, radius)
            touches = mask[lo:hi, lo:hi].any()
            if mask.sum() > 20 * s * s and touches == (tumour == "centre"):
                break
        else:
            mask = np.zeros((size, size), bool)

    image = stroma.copy()
    # Tumour: crowded, large, dark, ragged nuclei on a purplish cytoplasm.
    if mask.any():
        image = np.where(mask[..., None], 0.55 * image + 0.45 * np.array([0.80, 0.55, 0.80]), image)
        ty, tx = np.nonzero(mask)
        k = rng.choice(len(ty), size=max(1, int(len(ty) / (70 * s * s))), replace=False)
        cover = _nuclei(rng, size, ty[k], tx[k], rng.uniform(2.3, 2.9) * s, irregular=0.7)
        dark = np.array([0.32, 0.15, 0.48], np.float32)
        image = image * (1 - cover[..., None]) + dark * cover[..., None]
    # Normal nuclei, outside the tumour: small, sparse, purple.
    n = int(rng.uniform(45, 90) * s * s)
    ys, xs = rng.integers(0, size, n), rng.integers(0, size, n)
    keep = ~mask[ys, xs]
    cover = _nuclei(rng, size, ys[keep], xs[keep], rng.uniform(1.4, 1.9) * s, irregular=0.2)
    image = image * (1 - cover[..., None]) + np.array([0.45, 0.30, 0.64]) * cover[..., None]
    # Lymphocytes (the hard negatives): a dense cluster of small, round, very dark nuclei.
    if rng.random() < 0.3:
        ly, lx = rng.uniform(0, size, 2)
        m = int(rng.uniform(25, 50) * s * s)
        ys = np.round(ly + rng.normal(0, 9 * s, m)).astype(int)
        xs = np.round(lx + rng.normal(0, 9 * s, m)).astype(int)
        keep = (ys >= 0) & (ys < size) & (xs >= 0) & (xs < size)
        ys, xs = ys[keep], xs[keep]
        keep = ~mask[ys, xs]
        cover = _nuclei(rng, size, ys[keep], xs[keep], 1.5 * s, irregular=0.0)
        image = image * (1 - cover[..., None]) + np.array([0.24, 0.12, 0.36]) * cover[..., None]
    image = image * stain + rng.normal(0, 0.025, image.shape)
    return np.clip(_blur(image.astype(np.float32), 0.5 * s), 0, 1), mask


def synthetic_pcam(n: int = 1000, size: int = PATCH, positive_fraction: float = 0.5,
                   tumour_outside_fraction: float = 0.25, seed: int = 0) -> Patches:
    """Seeded synthetic patches. ``positive_fraction`` of them have tumour touching the centre
    region (label 1); of the negatives, ``tumour_outside_fraction`` have tumour elsewhere."""
    rng = np.random.default_rng(seed)
    n_pos = int(round(positive_fraction * n))
    labels = np.array([1] * n_pos + [0] * (n - n_pos))
    rng.shuffle(labels)
    images = np.empty((n, 3, size, size), np.uint8)
    masks = np.empty((n, size, size), bool)
    for i, label in enumerate(labels):
        kind = "centre" if label else ("edge" if rng.random() < tumour_outside_fraction else "none")
        image, mask = _synthetic_patch(rng, size, kind)
        images[i] = np.round(image * 255).astype(np.uint8).transpose(2, 0, 1)
        masks[i] = mask
    lo, hi = size // 3, size - size // 3
    labels = masks[:, lo:hi, lo:hi].any(axis=(1, 2)).astype(np.int64)  # the rule, not the intent
    return Patches(torch.from_numpy(images), torch.from_numpy(labels), torch.from_numpy(masks))


def load_synthetic_pcam(sizes: tuple[int, int, int] = (3000, 500, 500), size: int = PATCH,
                        seed: int = 0) -> PCamSplits:
    parts = [synthetic_pcam(n, size, seed=seed + k) for k, n in enumerate(sizes)]
    return PCamSplits(parts[0].dataset(), parts[1].dataset(), parts[2], "synthetic",
                      f"synthetic H&E-like patches, {size}×{size}, tumour masks for every patch",
                      {name: p.counts() for name, p in zip(SPLITS, parts)})


# ---------------------------------------------------------------------------------------------
# The PCam HDF5 files
# ---------------------------------------------------------------------------------------------

def find_pcam_files(folder: str | os.PathLike) -> dict[tuple[str, str], Path]:
    """The six files under ``folder`` (any depth), unpacking ``.h5.gz`` next to them if needed."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"PCam folder {folder} does not exist.")
    found, missing = {}, []
    for split in SPLITS:
        for part in ("x", "y"):
            name = h5_name(split, part)
            hits = sorted(folder.rglob(name)) or [_gunzip(p) for p in sorted(folder.rglob(name + ".gz"))]
            if hits:
                found[split, part] = hits[0]
            else:
                missing.append(name)
    if missing:
        raise FileNotFoundError(f"Missing PCam files under {folder}: {', '.join(missing)}. Download "
                                f"them from {ZENODO.format(name='')} (or let the loader do it).")
    return found


def _gunzip(path: Path) -> Path:
    target = path.with_suffix("")  # .h5.gz -> .h5
    if not target.is_file():
        partial = target.with_name(target.name + ".part")
        with gzip.open(path, "rb") as src, open(partial, "wb") as dst:
            shutil.copyfileobj(src, dst, length=16 << 20)
        partial.rename(target)
    return target


def read_labels(y_path: str | os.PathLike) -> torch.Tensor:
    """All labels of a split (N bytes, cheap even for the 262k training patches)."""
    import h5py

    with h5py.File(y_path, "r") as f:
        return torch.from_numpy(np.asarray(f["y"][:]).reshape(-1).astype(np.int64))


def stratified_subset(labels: torch.Tensor, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` sorted indices with the classes in their original proportions (all if n ≥ N)."""
    if n >= len(labels):
        return torch.arange(len(labels))
    from sklearn.model_selection import train_test_split

    chosen, _ = train_test_split(np.arange(len(labels)), train_size=n, stratify=labels.numpy(),
                                 random_state=seed)
    return torch.from_numpy(np.sort(chosen))


class H5Patches(Dataset):
    """Patches of one PCam split read lazily from its HDF5 file: ``indices`` says which ones.

    The file is opened on first access in each process (h5py handles do not survive a fork into
    DataLoader workers), and each item reads one 27 kB patch, so memory stays flat however large
    the file is.
    """

    def __init__(self, x_path: str | os.PathLike, labels: torch.Tensor, indices: torch.Tensor):
        self.x_path, self.labels, self.indices = Path(x_path), labels, indices
        self._file = None

    def __len__(self) -> int:
        return len(self.indices)

    def _x(self):
        if self._file is None:
            import h5py

            self._file = h5py.File(self.x_path, "r")
        return self._file["x"]

    def __getitem__(self, i):
        j = int(self.indices[i])
        image = torch.from_numpy(np.ascontiguousarray(self._x()[j])).permute(2, 0, 1)
        return image.float() / 255.0, self.labels[j].float()

    def __getstate__(self):  # what DataLoader workers receive: no open handle
        return {**self.__dict__, "_file": None}

    def read(self, positions=None) -> Patches:
        """Some of these patches in memory (all by default), read in one sorted HDF5 selection."""
        positions = torch.arange(len(self)) if positions is None else torch.as_tensor(positions)
        rows = self.indices[positions]
        order = torch.argsort(rows)  # h5py wants increasing indices
        x = np.asarray(self._x()[rows[order].numpy()])
        images = torch.empty((len(rows), 3, *x.shape[1:3]), dtype=torch.uint8)
        images[order] = torch.from_numpy(x).permute(0, 3, 1, 2)
        return Patches(images, self.labels[rows])

    def counts(self) -> list[int]:
        return torch.bincount(self.labels[self.indices], minlength=2).tolist()


def download_pcam(root: str | os.PathLike | None = None) -> Path:
    """Download the six PCam files from Zenodo into ``root/pcam`` (once, about 7 GB unpacked)."""
    from torchvision.datasets.utils import download_url

    target = data_dir(root) / "pcam"
    for split in SPLITS:
        for part in ("x", "y"):
            name = h5_name(split, part)
            if (target / name).is_file():
                continue
            download_url(ZENODO.format(name=name + ".gz"), str(target), filename=name + ".gz")
            _gunzip(target / (name + ".gz"))
            (target / (name + ".gz")).unlink()
    return target


def load_real_pcam(root: str | os.PathLike | None = None, sizes=(40_000, 5_000, 5_000),
                   seed: int = 0) -> PCamSplits:
    """PCam from ``GRADCAM_COURSE_PCAM_DIR`` if set, else downloaded; a stratified subset per split."""
    folder = os.environ.get(PCAM_DIR_ENV)
    files = find_pcam_files(folder if folder else download_pcam(root))
    parts, counts = {}, {}
    for (split, n) in zip(SPLITS, sizes):
        labels = read_labels(files[split, "y"])
        parts[split] = H5Patches(files[split, "x"], labels, stratified_subset(labels, n, seed))
        counts[split] = parts[split].counts()
    where = files["train", "x"].parent
    return PCamSplits(parts["train"], parts["val"], parts["test"].read(), "pcam",
                      f"PatchCamelyon from {where}, stratified subsets of "
                      f"{'/'.join(str(len(p)) for p in parts.values())} patches (96×96)", counts)


def load_pcam(mode: str | None = None, root: str | os.PathLike | None = None,
              sizes: tuple[int, int, int] | None = None, seed: int = 0, fast: bool | None = None,
              verbose: bool = True) -> PCamSplits:
    """The chapter's data in one call: a PCam subset if available, else synthetic patches."""
    fast = fast_mode() if fast is None else fast
    real_sizes = sizes or ((512, 256, 256) if fast else (40_000, 5_000, 5_000))
    synthetic_sizes = sizes or ((256, 128, 128) if fast else (3000, 500, 500))
    splits, reason = real_or_offline(
        mode, lambda: load_real_pcam(root, real_sizes, seed),
        lambda: load_synthetic_pcam(synthetic_sizes, seed=seed),
        what="the PatchCamelyon HDF5 files",
        advice=f"Check the internet connection, or point {PCAM_DIR_ENV} at a folder with the "
               "camelyonpatch_level_2_split_*.h5 files, or use mode='offline' for synthetic patches.")
    if verbose:
        title = ("Data: PatchCamelyon (real)" if splits.source == "pcam"
                 else "Data: OFFLINE fallback, synthetic H&E-like patches with tumour masks")
        why = f"\nWhy: {reason}" if reason else ""
        print(banner(title, f"{splits.description}\n{splits.summary()}{why}"))
    return splits


def write_pcam_h5(folder: str | os.PathLike, split: str, patches: Patches) -> tuple[Path, Path]:
    """Write patches in PCam's exact layout (``x`` N×S×S×3 uint8, ``y`` N×1×1×1 uint8): small
    local files for tests and for trying the real loader offline."""
    import h5py

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    x_path, y_path = folder / h5_name(split, "x"), folder / h5_name(split, "y")
    with h5py.File(x_path, "w") as f:
        f.create_dataset("x", data=patches.images.permute(0, 2, 3, 1).numpy(),
                         chunks=(1, *patches.images.shape[2:], 3))
    with h5py.File(y_path, "w") as f:
        f.create_dataset("y", data=patches.labels.numpy().astype(np.uint8).reshape(-1, 1, 1, 1))
    return x_path, y_path


class PCamDataModule(SplitDataModule):
    """Lightning loaders over :class:`PCamSplits` (train and val may be lazy HDF5 readers)."""

    def __init__(self, splits: PCamSplits, batch_size: int = 64, num_workers: int = 0, seed: int = 0):
        super().__init__(splits.train, splits.val, splits.test.dataset(), batch_size, seed, num_workers)


# ---------------------------------------------------------------------------------------------
# Model
# ---------------------------------------------------------------------------------------------

def _block(cin: int, cout: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.BatchNorm2d(cout),
                         nn.ReLU(inplace=True), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class PatchCNN(nn.Module):
    """A small CNN for 96×96 patches with one output: the logit of "tumour in the centre".

    Three poolings leave a 12×12 grid at ``features[-1]`` (the Grad-CAM target), fine enough to
    tell the centre 32×32 region (4×4 cells) from the rest. Global average pooling then a linear
    layer: a single logit, trained with ``BCEWithLogitsLoss`` (numerically stabler than a
    sigmoid followed by ``BCELoss``). The widths double as the grid halves, so every block costs
    about the same (~16 MFLOP per patch): occlusion and insertion/deletion evaluate thousands of
    perturbed patches, on a CPU too.
    """

    def __init__(self, widths: tuple[int, ...] = (8, 16, 32, 64), dropout: float = 0.2):
        super().__init__()
        layers, cin = [], 3
        for i, w in enumerate(widths):
            layers.append(_block(cin, w))
            if i < len(widths) - 1:
                layers.append(nn.MaxPool2d(2))
            cin = w
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout),
                                  nn.Linear(cin, 1))

    def forward(self, x):
        return self.head(self.features(x))
