"""The ImageNet classifier (VGG16 real, EfficientNet-Lite0 offline) and the sample photos."""

import numpy as np
import pytest
import torch
from PIL import Image

from gradcam_course import imagenet


@pytest.fixture(scope="module")
def offline():
    return imagenet.load_imagenet_classifier(mode="offline", verbose=False)


def test_offline_classifier_is_a_trained_efficientnet(offline, capsys):
    assert offline.name == "EfficientNet-Lite0" and offline.source == "offline"
    assert len(offline.categories) == 1000
    photos = imagenet.sample_photos()
    with torch.no_grad():
        logits = offline.model(offline.preprocess([photos["cat"], photos["espresso"]]))
    (cat, *_), (espresso, *_) = offline.top_classes(logits, k=3)
    assert cat[1] == "Egyptian cat" and cat[2] > 0.5
    assert espresso[1] == "espresso" and espresso[2] > 0.5


def test_offline_banner_says_why(capsys):
    imagenet.load_imagenet_classifier(mode="offline")
    out = capsys.readouterr().out
    assert "OFFLINE fallback, EfficientNet-Lite0" in out and "Why: GRADCAM_COURSE_DATA=offline" in out


def test_real_vgg16_loads_weights_from_torch_home(tmp_path, monkeypatch, capsys):
    """The real loader on a local file in torchvision's format and place (no download)."""
    from torchvision.models import VGG16_Weights, vgg16

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    state = vgg16(weights=None).state_dict()
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(state, checkpoints / VGG16_Weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1])
    classifier = imagenet.load_imagenet_classifier(mode="real")
    assert classifier.name == "VGG16" and classifier.source == "real"
    assert classifier.target_layer is classifier.model.features[29]
    assert torch.equal(classifier.model.features[28].weight, state["features.28.weight"])
    assert "VGG16, ImageNet weights (real)" in capsys.readouterr().out
    x = torch.zeros(2, 3, 224, 448)  # adaptive pooling: wide composites work too
    with torch.no_grad():
        assert classifier.model(x).shape == (2, 1000)


def test_real_mode_without_weights_explains_what_to_do(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # empty: the download is attempted, fails offline
    with pytest.raises(RuntimeError, match="mode='offline'"):
        imagenet.load_imagenet_classifier(mode="real", verbose=False)


def test_auto_mode_falls_back_with_a_reason(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    classifier = imagenet.load_imagenet_classifier(mode="auto")
    if classifier.source == "offline":  # no internet here; with internet VGG16 is the right answer
        assert "Why: VGG16 weights could not be downloaded" in capsys.readouterr().out
    else:
        assert classifier.name == "VGG16"


def test_preprocess_shapes_and_errors(offline):
    photos = imagenet.sample_photos()
    assert offline.preprocess(photos["rocket"]).shape == (1, 3, 224, 224)
    assert offline.preprocess(list(photos.values())).shape == (6, 3, 224, 224)
    composite = imagenet.side_by_side(photos["cat"], photos["espresso"])
    assert offline.preprocess(composite, size=composite.shape[:2]).shape == (1, 3, 224, 448)
    with pytest.raises(ValueError, match="RGB uint8"):
        offline.preprocess(photos["cat"].astype(np.float32))


def test_class_index(offline):
    assert offline.categories[offline.class_index("egyptian cat")] == "Egyptian cat"
    with pytest.raises(KeyError, match="Similar"):
        offline.class_index("cat")


def test_sample_photos_and_composite():
    photos = imagenet.sample_photos()
    assert set(photos) == {"cat", "espresso", "astronaut", "rocket", "temple", "flower"}
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in photos.values())
    composite = imagenet.side_by_side(photos["cat"], photos["espresso"], size=100)
    assert composite.shape == (100, 200, 3) and composite.dtype == np.uint8
    # the left half is the cat photo's centre crop, the right half the espresso's
    assert abs(float(composite[:, :100].mean()) - float(imagenet.center_square(photos["cat"]).mean())) < 3
    assert abs(float(composite[:, 100:].mean()) - float(imagenet.center_square(photos["espresso"]).mean())) < 3


def test_load_image_grey_rgba_and_missing(tmp_path):
    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((5, 7), 200, np.uint8)).save(grey)
    rgba = tmp_path / "rgba.png"
    Image.fromarray(np.zeros((4, 3, 4), np.uint8)).save(rgba)
    assert imagenet.load_image(grey).shape == (5, 7, 3)
    assert int(imagenet.load_image(grey)[0, 0, 1]) == 200
    assert imagenet.load_image(rgba).shape == (4, 3, 3)
    with pytest.raises(FileNotFoundError, match="missing.jpg"):
        imagenet.load_image(tmp_path / "missing.jpg")
