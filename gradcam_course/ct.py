"""Chest CT slices for chapter 3: the Kaggle COVID CT dataset, or synthetic slices with lesion masks.

Real: "A COVID multiclass dataset of CT scans" (Kaggle ``plameneduardo/a-covid-multiclass-dataset-
of-ct-scans``), laid out as ``New_Data_CoV2/{Covid,Healthy,Others}/<patient>/<slice>.png``. We keep
Covid and Healthy and split **by patient**: slices of one patient are near copies of each other, so
a split by image puts the same patient in train and test and measures memory, not diagnosis.

Offline: a seeded generator of CT-like slices (body outline, two dark lung fields with vessels,
noise). COVID slices carry one to three ground-glass opacities, mostly near the lung periphery,
with a ground-truth lesion mask per slice, so that localisation can be measured. The generator can
also stamp a bright "scanner label" in a corner on chosen patients: the shortcut of the chapter.
"""

from __future__ import annotations

import json
import os
from collections import OrderedDict
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset

from .data import banner, data_dir, real_or_offline
from .runtime import fast_mode
from .training import SplitDataModule

CLASSES = ("healthy", "covid")
KAGGLE_DATASET = "plameneduardo/a-covid-multiclass-dataset-of-ct-scans"
#: Set to a folder holding ``New_Data_CoV2`` (or its class folders) to skip the download.
CT_DIR_ENV = "GRADCAM_COURSE_CT_DIR"
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
# Grey-level statistics of ImageNet (mean and std of the RGB channels averaged).
GREY_MEAN, GREY_STD = 0.449, 0.226


@dataclass
class CTSlices:
    """Slices as tensors: images (N, 1, S, S) in [0, 1], labels (N,) with 1 = covid, patient ids
    (N,), and lesion masks (N, S, S) bool where known (synthetic data), else None."""

    images: torch.Tensor
    labels: torch.Tensor
    patients: torch.Tensor
    masks: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, index) -> "CTSlices":
        index = torch.as_tensor(index, dtype=torch.long)
        return CTSlices(self.images[index], self.labels[index], self.patients[index],
                        None if self.masks is None else self.masks[index])

    def counts(self) -> list[int]:
        """Slices per class, in the order of :data:`CLASSES`."""
        return torch.bincount(self.labels, minlength=len(CLASSES)).tolist()

    def dataset(self) -> TensorDataset:
        return TensorDataset(self.images, self.labels)


@dataclass
class CTSplits:
    train: CTSlices
    val: CTSlices
    test: CTSlices
    source: str  # "kaggle" or "synthetic"
    description: str

    @property
    def has_masks(self) -> bool:
        return self.test.masks is not None

    def summary(self) -> str:
        lines = []
        for name in ("train", "val", "test"):
            part = getattr(self, name)
            counts = ", ".join(f"{c} {n}" for c, n in zip(CLASSES, part.counts()))
            lines.append(f"{name:>5}: {len(part):5d} slices from "
                         f"{len(torch.unique(part.patients)):3d} patients ({counts})")
        return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Synthetic slices
# ---------------------------------------------------------------------------------------------

def _ellipse(yy, xx, cy, cx, ry, rx):
    """Normalised elliptic radius: < 1 inside the ellipse."""
    return np.sqrt(((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2)


def _blur(image: np.ndarray, sigma: float) -> np.ndarray:
    import cv2

    return cv2.GaussianBlur(image, (0, 0), sigmaX=sigma, sigmaY=sigma,
                            borderType=cv2.BORDER_REFLECT)


MARKER_SIZE = 0.07   # side of the scanner label, as a fraction of the slice
MARKER_OFFSET = 0.04  # its distance from the top-left corner


def add_marker(images: torch.Tensor) -> torch.Tensor:
    """A copy of (N, 1, S, S) slices with a bright square "scanner label" near the top-left corner."""
    size = images.shape[-1]
    side, offset = max(2, round(MARKER_SIZE * size)), max(1, round(MARKER_OFFSET * size))
    marked = images.clone()
    marked[..., offset:offset + side, offset:offset + side] = 1.0
    return marked


def marker_region(size: int) -> torch.Tensor:
    """(S, S) bool mask of the label's corner: the top-left 30 % of each side, which holds the
    square :func:`add_marker` paints and the air around it but no lung (the lungs start lower)."""
    region = torch.zeros(size, size, dtype=torch.bool)
    corner = max(2, round(0.3 * size))
    region[:corner, :corner] = True
    return region


def mask_border(images: torch.Tensor, width: float = 0.14) -> torch.Tensor:
    """A copy with a border band of ``width`` (fraction of the side) set to 0, the value of air.

    The body never reaches the corners, so nothing a radiologist would look at is lost, and
    whatever a scanner printed there is gone.
    """
    size = images.shape[-1]
    w = max(1, round(width * size))
    masked = images.clone()
    masked[..., :w, :] = 0.0
    masked[..., -w:, :] = 0.0
    masked[..., :, :w] = 0.0
    masked[..., :, -w:] = 0.0
    return masked


def _synthetic_patient(rng: np.random.Generator, size: int, covid: bool, n_slices: int):
    """Slices of one synthetic patient: fixed anatomy, varying vessels, lesions and noise."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32) / size
    cy, cx = 0.5 + rng.normal(0, 0.015), 0.5 + rng.normal(0, 0.015)
    body_ry, body_rx = rng.uniform(0.32, 0.36), rng.uniform(0.40, 0.44)
    lung_ry, lung_rx = rng.uniform(0.20, 0.24), rng.uniform(0.12, 0.15)
    lung_dx = rng.uniform(0.17, 0.20)
    images, masks = [], []
    for _ in range(n_slices):
        scale = rng.uniform(0.96, 1.04)
        body_r = _ellipse(yy, xx, cy, cx, body_ry * scale, body_rx * scale)
        img = np.where(body_r < 1, 0.55, 0.0).astype(np.float32)
        img += np.where((body_r > 0.93) & (body_r < 1), 0.15, 0.0)  # skin and fat
        lungs = np.zeros_like(img, dtype=bool)
        for side in (-1, 1):
            r = _ellipse(yy, xx, cy - 0.02, cx + side * lung_dx * scale,
                         lung_ry * scale, lung_rx * scale)
            lungs |= r < 1
        img[lungs] = 0.08
        # mediastinum and spine
        img += 0.1 * (_ellipse(yy, xx, cy + 0.02, cx, 0.10, 0.06) < 1)
        img += 0.35 * (_ellipse(yy, xx, cy + body_ry * scale - 0.07, cx, 0.04, 0.04) < 1)
        # vessels: small bright dots inside the lungs
        vessels = np.zeros_like(img)
        ly, lx = np.nonzero(lungs)
        for k in rng.choice(len(ly), size=rng.integers(12, 24), replace=False):
            vessels[ly[k], lx[k]] = rng.uniform(0.8, 1.6)
        img += _blur(vessels, 0.6 + 0.4 * rng.random()) * 2.0
        mask = np.zeros((size, size), dtype=bool)
        if covid:
            opacity = np.zeros_like(img)
            for _lesion in range(rng.integers(1, 4)):
                # mostly peripheral: close to the lung's edge, as ground-glass opacities are
                side = rng.choice((-1, 1))
                lcx = cx + side * lung_dx * scale
                angle = rng.uniform(0, 2 * np.pi)
                radius = rng.uniform(0.55, 0.85) if rng.random() < 0.75 else rng.uniform(0.0, 0.5)
                py = cy - 0.02 + radius * lung_ry * scale * np.sin(angle)
                px = lcx + radius * lung_rx * scale * np.cos(angle)
                sigma = rng.uniform(0.045, 0.08)
                blob = np.exp(-(((yy - py) ** 2 + (xx - px) ** 2) / (2 * sigma ** 2)))
                opacity = np.maximum(opacity, rng.uniform(0.22, 0.32) * blob)
                mask |= (blob > 0.3) & lungs
            texture = 1.0 + 0.25 * _blur(rng.normal(0, 1, img.shape).astype(np.float32), 1.0)
            img += opacity * lungs * texture
        img += rng.normal(0, 0.03, img.shape).astype(np.float32)
        img = _blur(img, 0.7)
        images.append(np.clip(img, 0.0, 1.0))
        masks.append(mask)
    return np.stack(images), np.stack(masks)


def synthetic_ct(n_patients: int = 60, slices_per_patient: int = 12, size: int = 96,
                 covid_fraction: float = 0.7, seed: int = 0) -> CTSlices:
    """Seeded synthetic CT slices; ``covid_fraction`` of the patients have COVID (the Kaggle data
    is imbalanced about the same way)."""
    if not 0 < covid_fraction < 1:
        raise ValueError(f"covid_fraction must lie in (0, 1), got {covid_fraction}.")
    rng = np.random.default_rng(seed)
    n_covid = int(round(covid_fraction * n_patients))
    labels = np.array([0] * (n_patients - n_covid) + [1] * n_covid)
    rng.shuffle(labels)
    images, masks, slice_labels, patients = [], [], [], []
    for p, label in enumerate(labels):
        imgs, msks = _synthetic_patient(rng, size, bool(label), slices_per_patient)
        images.append(imgs)
        masks.append(msks)
        slice_labels += [label] * slices_per_patient
        patients += [p] * slices_per_patient
    images = torch.from_numpy(np.concatenate(images))[:, None]
    return CTSlices(images.float(), torch.tensor(slice_labels, dtype=torch.long),
                    torch.tensor(patients, dtype=torch.long), torch.from_numpy(np.concatenate(masks)))


def split_by_patient(slices: CTSlices, val: float = 0.15, test: float = 0.25,
                     seed: int = 0) -> tuple[CTSlices, CTSlices, CTSlices]:
    """Train/val/test with every patient in exactly one part, stratified by class."""
    from sklearn.model_selection import train_test_split

    patients = torch.unique(slices.patients)
    # A patient's label is the label of their slices (one diagnosis per patient).
    first = [int(torch.nonzero(slices.patients == p)[0]) for p in patients]
    labels = slices.labels[first].numpy()
    stratify = labels if np.bincount(labels).min() >= 3 else None
    rest, test_p = train_test_split(patients.numpy(), test_size=test, stratify=stratify,
                                    random_state=seed)
    rest_labels = labels[np.isin(patients.numpy(), rest)]
    stratify = rest_labels if np.bincount(rest_labels).min() >= 2 else None
    train_p, val_p = train_test_split(rest, test_size=val / (1 - test), stratify=stratify,
                                      random_state=seed)
    parts = []
    for chosen in (train_p, val_p, test_p):
        parts.append(slices.select(torch.nonzero(torch.isin(slices.patients,
                                                            torch.as_tensor(chosen)))[:, 0]))
    return tuple(parts)


def with_scanner_label(slices: CTSlices, rates: tuple[float, float] = (0.1, 0.9),
                       seed: int = 0) -> tuple[CTSlices, torch.Tensor]:
    """The shortcut: patients scanned on "the COVID ward's scanner" get its label on every slice.

    ``rates = (healthy, covid)`` is the share of patients of each class with the label. Returns
    the marked slices and a (N,) bool tensor saying which slices carry it.
    """
    rng = np.random.default_rng(seed)
    marked = torch.zeros(len(slices), dtype=torch.bool)
    for patient in torch.unique(slices.patients):
        rows = slices.patients == patient
        label = int(slices.labels[rows][0])
        marked[rows] = bool(rng.random() < rates[label])
    images = slices.images.clone()
    images[marked] = add_marker(images[marked])
    return with_images(slices, images), marked


def load_synthetic_ct(size: int = 96, n_patients: int = 100, slices_per_patient: int = 10,
                      seed: int = 0, test_share: float = 0.25) -> CTSplits:
    """Synthetic slices split by patient; ``test_share`` of the patients are held out."""
    slices = synthetic_ct(n_patients, slices_per_patient, size, seed=seed)
    train, val, test = split_by_patient(slices, test=test_share, seed=seed)
    return CTSplits(train, val, test, "synthetic",
                    f"synthetic CT slices, {size}×{size}, {n_patients} patients × "
                    f"{slices_per_patient} slices, lesion masks for every covid slice")


# ---------------------------------------------------------------------------------------------
# The Kaggle dataset
# ---------------------------------------------------------------------------------------------

def _class_of(folder: str) -> int | None:
    name = folder.lower().replace("_", "-").replace(" ", "-")
    if name in {"non-covid", "noncovid", "healthy", "normal"}:
        return 0
    if name in {"covid", "covid-19", "covid19"}:
        return 1
    return None  # "Others" (other lung diseases) is not part of this binary task


def find_ct_root(folder: str | os.PathLike) -> Path:
    """The folder that holds the class folders (``Covid``, ``Healthy``) under ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"CT folder {folder} does not exist.")
    for candidate in [folder, *sorted(p for p in folder.rglob("*") if p.is_dir())]:
        classes = {_class_of(p.name) for p in candidate.iterdir() if p.is_dir()}
        if {0, 1} <= classes:
            return candidate
    raise FileNotFoundError(
        f"No 'Covid' and 'Healthy' class folders under {folder}. Expected the Kaggle layout "
        f"New_Data_CoV2/{{Covid,Healthy}}/<patient>/<slice>.png.")


def read_ct_folder(folder: str | os.PathLike, size: int = 224) -> CTSlices:
    """Every slice under the class folders, resized to ``size``×``size`` grey, with patient ids.

    Patients are the sub-folders of a class folder; a slice lying directly in a class folder
    counts as its own patient (a patient split is then impossible to guarantee).
    """
    from PIL import Image

    root = find_ct_root(folder)
    images, labels, patients = [], [], []
    patient_ids: dict[Path, int] = {}
    for class_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        label = _class_of(class_dir.name)
        if label is None:
            continue
        for path in sorted(class_dir.rglob("*")):
            if path.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            rel = path.relative_to(class_dir)
            key = class_dir / rel.parts[0] if len(rel.parts) > 1 else path
            patient = patient_ids.setdefault(key, len(patient_ids))
            with Image.open(path) as img:
                grey = img.convert("L").resize((size, size), Image.BILINEAR)
            images.append(torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255.0))
            labels.append(label)
            patients.append(patient)
    if not images:
        raise FileNotFoundError(f"No images ({', '.join(sorted(IMAGE_EXTENSIONS))}) under {root}.")
    return CTSlices(torch.stack(images)[:, None], torch.tensor(labels), torch.tensor(patients))


def kaggle_credentials() -> dict[str, str]:
    """Kaggle username and key from the environment, Colab secrets or ``~/.kaggle/kaggle.json``.

    The values are returned to the caller only; they are never printed or written anywhere.
    """
    user, key = os.environ.get("KAGGLE_USERNAME"), os.environ.get("KAGGLE_KEY")
    if user and key:
        return {"username": user, "key": key}
    try:  # Colab: the key icon in the left bar, secrets KAGGLE_USERNAME and KAGGLE_KEY
        from google.colab import userdata  # type: ignore

        user, key = userdata.get("KAGGLE_USERNAME"), userdata.get("KAGGLE_KEY")
        if user and key:
            return {"username": user, "key": key}
    except Exception:
        pass
    config = Path(os.environ.get("KAGGLE_CONFIG_DIR", Path.home() / ".kaggle")) / "kaggle.json"
    if config.is_file():
        data = json.loads(config.read_text())
        if data.get("username") and data.get("key"):
            return {"username": data["username"], "key": data["key"]}
    raise PermissionError(
        "Missing Kaggle credentials. Create an API token on kaggle.com (Settings → API → Create "
        "New Token), then either set the environment variables KAGGLE_USERNAME and KAGGLE_KEY, add "
        "them as Colab secrets, or save kaggle.json in ~/.kaggle/. Or download the dataset by hand "
        f"and set {CT_DIR_ENV} to its folder.")


def download_ct(root: str | os.PathLike | None = None) -> Path:
    """Download and unzip the Kaggle dataset into ``root/covid-ct`` (once); returns that folder."""
    target = data_dir(root) / "covid-ct"
    if target.is_dir() and any(target.iterdir()):
        return target
    credentials = kaggle_credentials()
    os.environ.setdefault("KAGGLE_USERNAME", credentials["username"])
    os.environ.setdefault("KAGGLE_KEY", credentials["key"])
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi  # type: ignore
    except ImportError as err:
        raise ImportError("The Kaggle client is not installed: pip install kaggle") from err
    api = KaggleApi()
    api.authenticate()
    target.mkdir(parents=True, exist_ok=True)
    api.dataset_download_files(KAGGLE_DATASET, path=str(target), unzip=True, quiet=True)
    return target


def load_real_ct(root: str | os.PathLike | None = None, size: int = 224, seed: int = 0) -> CTSplits:
    """The Kaggle dataset from ``GRADCAM_COURSE_CT_DIR`` if set, else downloaded; split by patient."""
    folder = os.environ.get(CT_DIR_ENV)
    folder = Path(folder) if folder else download_ct(root)
    slices = read_ct_folder(folder, size)
    train, val, test = split_by_patient(slices, seed=seed)
    return CTSplits(train, val, test, "kaggle",
                    f"Kaggle {KAGGLE_DATASET} (Covid vs Healthy) from {folder}, "
                    f"resized to {size}×{size}, split by patient")


def load_ct_scans(mode: str | None = None, root: str | os.PathLike | None = None,
                  size: int | None = None, seed: int = 0, fast: bool | None = None,
                  verbose: bool = True) -> CTSplits:
    """The chapter's data in one call: Kaggle CT slices if available, else synthetic ones."""
    fast = fast_mode() if fast is None else fast
    synthetic = dict(size=size or (64 if fast else 96), n_patients=24 if fast else 100,
                     slices_per_patient=6 if fast else 10, seed=seed)
    splits, reason = real_or_offline(
        mode, lambda: load_real_ct(root, size or 224, seed), lambda: load_synthetic_ct(**synthetic),
        what="the Kaggle COVID CT dataset",
        advice=f"Set Kaggle credentials (KAGGLE_USERNAME/KAGGLE_KEY), or point {CT_DIR_ENV} at the "
               "unzipped dataset, or use mode='offline' for synthetic slices.")
    if verbose:
        title = ("Data: COVID CT slices (real, Kaggle)" if splits.source == "kaggle"
                 else "Data: OFFLINE fallback, synthetic CT slices with lesion masks")
        why = f"\nWhy: {reason}" if reason else ""
        print(banner(title, f"{splits.description}\n{splits.summary()}{why}"))
    return splits


def save_slices(images: torch.Tensor, folder: str | os.PathLike, prefix: str = "slice") -> list[Path]:
    """Write (N, 1, S, S) slices in [0, 1] as 8-bit grey PNGs; returns the paths."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / f"{prefix}_{i:03d}.png"
        pixels = (image[0].clamp(0, 1).numpy() * 255).round().astype(np.uint8)
        Image.fromarray(pixels, mode="L").save(path)
        paths.append(path)
    return paths


def ct_transform(size: int):
    """PIL image (grey or RGB) → (1, size, size) float tensor in [0, 1], as the models expect."""
    from PIL import Image

    def transform(image: "Image.Image") -> torch.Tensor:
        grey = image.convert("L").resize((size, size), Image.BILINEAR)
        return torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255.0)[None]

    return transform


class CTDataModule(SplitDataModule):
    """Lightning loaders over already-loaded :class:`CTSplits` (or any train/val/test triple)."""

    def __init__(self, train: CTSlices, val: CTSlices, test: CTSlices, batch_size: int = 32,
                 seed: int = 0):
        super().__init__(train.dataset(), val.dataset(), test.dataset(), batch_size, seed)


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

class GreyNormalize(nn.Module):
    """Standardises grey slices in [0, 1] with ImageNet's grey statistics, inside the model, so
    that images stay displayable and every model input is the plain slice."""

    def forward(self, x):
        return (x - GREY_MEAN) / GREY_STD


def _grey_stem(conv: nn.Conv2d) -> nn.Sequential:
    """An RGB first convolution turned into a grey one: summing the kernels over the colour
    channels gives the same response to a grey image as the RGB network gave to its 3 copies."""
    grey = nn.Conv2d(1, conv.out_channels, conv.kernel_size, conv.stride, conv.padding,
                     bias=conv.bias is not None)
    with torch.no_grad():
        grey.weight.copy_(conv.weight.sum(dim=1, keepdim=True))
        if conv.bias is not None:
            grey.bias.copy_(conv.bias)
    return nn.Sequential(OrderedDict(normalize=GreyNormalize(), conv=grey))


def _pretrained_or_scratch(build, weights, mode, name):
    """(model, pretrained?, reason): ImageNet weights if they can be had, else random init."""
    model, reason = real_or_offline(
        mode, lambda: build(weights=weights), lambda: build(weights=None),
        what=f"{name} ImageNet weights",
        advice="Check the internet connection or use mode='offline' to train from scratch.")
    return model, not reason, reason


def build_resnet18(num_classes: int = 2, mode: str | None = None, output_stride: int = 16,
                   verbose: bool = True) -> nn.Module:
    """torchvision ResNet18 for grey slices: ImageNet weights when available, new 2-class head.

    Grad-CAM's usual target is ``model.layer4``, the last residual stage. Its map is 1/32 of the
    input (3×3 for a 96-pixel slice): too coarse to tell one lung lobe from another. With
    ``output_stride=16`` the first block of layer4 keeps stride 1, so the map is 1/16 of the
    input (6×6); the weights are the same, only layer4 computes on a 4× larger grid.
    """
    from torchvision.models import ResNet18_Weights, resnet18

    model, pretrained, reason = _pretrained_or_scratch(resnet18, ResNet18_Weights.IMAGENET1K_V1,
                                                       mode, "ResNet18")
    model.conv1 = _grey_stem(model.conv1)
    model.fc = nn.Linear(model.fc.in_features, num_classes)
    if output_stride == 16:
        model.layer4[0].conv1.stride = (1, 1)
        model.layer4[0].downsample[0].stride = (1, 1)
    elif output_stride != 32:
        raise ValueError(f"output_stride must be 16 or 32, got {output_stride}.")
    if verbose:
        _model_banner("ResNet18", pretrained, reason)
    return model


def build_densenet121(num_classes: int = 2, mode: str | None = None, output_stride: int = 16,
                      verbose: bool = True) -> nn.Module:
    """torchvision DenseNet121 for grey slices, new 2-class head.

    Its Grad-CAM target is ``model.features`` (ending in ``norm5``). DenseNet's forward applies
    ``F.relu(features, inplace=True)`` right after it: a hook that keeps the layer's output
    without cloning it would see that output overwritten. ``output_stride=16`` drops the last
    transition's pooling, as for ResNet18.
    """
    from torchvision.models import DenseNet121_Weights, densenet121

    model, pretrained, reason = _pretrained_or_scratch(densenet121, DenseNet121_Weights.IMAGENET1K_V1,
                                                       mode, "DenseNet121")
    model.features.conv0 = _grey_stem(model.features.conv0)
    model.classifier = nn.Linear(model.classifier.in_features, num_classes)
    if output_stride == 16:
        model.features.transition3.pool = nn.Identity()
    elif output_stride != 32:
        raise ValueError(f"output_stride must be 16 or 32, got {output_stride}.")
    if verbose:
        _model_banner("DenseNet121", pretrained, reason)
    return model


def _model_banner(name: str, pretrained: bool, reason: str) -> None:
    if pretrained:
        print(banner(f"Model: {name}, ImageNet weights", "fine-tuned on the slices, new 2-class head"))
    else:
        print(banner(f"Model: {name} trained FROM SCRATCH", f"Why: {reason}"))


def with_images(slices: CTSlices, images: torch.Tensor) -> CTSlices:
    """The same slices (labels, patients, masks) with other pixels, e.g. masked or marked."""
    return replace(slices, images=images)
