"""Hidden checks of chapter 3. Each builds its own seeded inputs and compares the student's
function with the reference; an AssertionError message tells the student what went wrong."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from autograder.probes.basic_models import SmallResNet, randn_images
from autograder.checks.common import assert_tensor, hook_count, refusing_package_answers
from autograder.reference import ch03_resnet_covid_ct as ref

CHAPTER = "03_resnet_covid_ct"

warnings.filterwarnings("ignore")  # stderr in a graded cell costs its points


class Boom(Exception):
    pass


def _other_classes(model, x, num_classes=3):
    """One class per image, never the predicted one."""
    with torch.no_grad():
        pred = model(x).argmax(1)
    return [(int(p) + 1 + i % (num_classes - 1)) % num_classes for i, p in enumerate(pred)]


def _maps(GradCAM, model, layer, x, class_idx):
    with GradCAM(model, layer) as cam:
        return cam(x, class_idx), cam


def _reference(model, layer, x, class_idx):
    with ref.GradCAM(model, layer) as cam:
        return cam(x, class_idx), cam.logits


# --- exercise 1: the GradCAM context manager -----------------------------------------------------

def check_gradcam_values(GradCAM):
    """Maps of a whole residual stage for a batch of non-square images, one class per image."""
    model = SmallResNet()
    x = randn_images(h=12, w=15)
    classes = _other_classes(model, x)
    got, _ = _maps(GradCAM, model, model.layer2, x, classes)
    want, _ = _reference(model, model.layer2, x, classes)
    assert_tensor("maps", got, want, atol=1e-5,
                  hint="Grad-CAM of chapter 1 for each image's own class: weights = mean gradient "
                       "over h, w; ReLU of the weighted sum; bilinear upsampling to the input "
                       "size; per-image min-max with eps 1e-7.")


def check_gradcam_inplace(GradCAM):
    """Target = the last BatchNorm of a block: `out += identity` and an in-place ReLU follow it."""
    model = SmallResNet(seed=3)
    x = randn_images(n=3, h=10, w=13, seed=4)
    classes = _other_classes(model, x)
    layer = model.layer2[1].bn2
    got, _ = _maps(GradCAM, model, layer, x, classes)
    want, _ = _reference(model, layer, x, classes)
    assert_tensor("maps of layer2[1].bn2 (followed by `out += identity` and an in-place ReLU)",
                  got, want, atol=1e-5,
                  hint="The block modifies the layer's output in place after your hook ran: "
                       "return output.clone() from the forward hook (the network then works on "
                       "the copy) and keep the original.")


def check_gradcam_hooks(GradCAM):
    """No hook survives the `with` block, also when the block raises; the error is not swallowed."""
    model = SmallResNet(seed=5)
    x = randn_images(n=2, h=12, w=15, seed=6)
    with GradCAM(model, model.layer2) as cam:
        cam(x, None)
        cam(x, 1)  # two calls in one block
    assert hook_count(model) == 0, (
        f"{hook_count(model)} hook(s) are still registered after the `with` block: remove every "
        "handle in __exit__.")
    try:
        with GradCAM(model, model.layer2) as cam:
            cam(x, None)
            raise Boom("raised inside the with block (hidden test)")
    except Boom:
        pass
    else:
        raise AssertionError("An exception raised inside the `with` block was swallowed: "
                             "__exit__ must return False (or None).")
    assert hook_count(model) == 0, (
        "Hooks stay registered when the `with` block raises: __exit__ runs in that case too, "
        "remove them there.")


def check_gradcam_class_idx(GradCAM):
    """None → predicted class, int → same class for all, tensor → one per image; cam.logits."""
    model = SmallResNet(seed=7)
    x = randn_images(n=3, h=11, w=9, seed=8)
    for label, class_idx in (("None", None), ("an int (2)", 2), ("a tensor", torch.tensor([2, 0, 1]))):
        got, cam = _maps(GradCAM, model, model.layer2, x, class_idx)
        want, logits = _reference(model, model.layer2, x, class_idx)
        assert_tensor(f"maps for class_idx={label}", got, want, atol=1e-5,
                      hint="None means each image's predicted class; an int the same class for "
                           "every image; a sequence one class per image.")
    assert_tensor("cam.logits", getattr(cam, "logits", None), logits,
                  hint="Keep the (detached) logits of the last call in self.logits.")


# --- exercise 2: class_weights -------------------------------------------------------------------

def check_class_weights(class_weights):
    for counts in ([180, 420], (30, 5, 65), np.array([7, 7]), torch.tensor([1, 999])):
        want = ref.class_weights(counts)
        got = class_weights(counts)
        assert_tensor(f"class_weights({list(np.asarray(counts))})", got, want, atol=1e-5,
                      hint="w_c = N / (C · n_c): inverse frequency, scaled so that the average "
                           "weight per sample is 1 (sum of n_c · w_c = N); a float tensor.")
        assert got.dtype == torch.float32, f"Return float32 weights, got {got.dtype}."
    try:
        class_weights([10, 0])
    except ValueError:
        pass
    else:
        raise AssertionError("A class with 0 samples must raise ValueError (its weight would be "
                             "infinite).")


# --- exercise 3: plot_gradcam --------------------------------------------------------------------

def _transform(size=(20, 20)):
    from PIL import Image

    def transform(image):
        grey = image.convert("L").resize(size[::-1], Image.BILINEAR)
        return torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255.0)[None]

    return transform


class _ReferenceGradCAM:
    """Within the block, the student's plot_gradcam sees the reference GradCAM, so that a mistake
    in exercise 2 is not charged again in exercise 3."""

    def __init__(self, function):
        self.globals = getattr(function, "__globals__", {})

    def __enter__(self):
        self.saved = self.globals.get("GradCAM", None)
        if "GradCAM" in self.globals:
            self.globals["GradCAM"] = ref.GradCAM

    def __exit__(self, *exc):
        if self.saved is not None:
            self.globals["GradCAM"] = self.saved
        return False


def _texts(fig):
    texts = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    return " | ".join(texts + [ax.get_title() for ax in fig.axes])


def check_plot_gradcam(plot_gradcam):
    """A grey PNG and an RGB JPEG, predicted class and a given class; figure and title."""
    import matplotlib.pyplot as plt
    from PIL import Image

    model = SmallResNet(in_channels=1, num_classes=2, seed=9)
    transform = _transform((20, 24))
    rng = np.random.default_rng(10)
    with tempfile.TemporaryDirectory() as tmp:
        grey = Path(tmp) / "slice grey.png"
        Image.fromarray(rng.integers(0, 255, (37, 41), dtype=np.uint8), mode="L").save(grey)
        rgb = Path(tmp) / "slice_rgb.jpg"
        Image.fromarray(rng.integers(0, 255, (30, 30, 3), dtype=np.uint8), mode="RGB").save(rgb)
        for path, class_idx in ((grey, None), (rgb, None), (str(grey), 0), (rgb, 1)):
            with _ReferenceGradCAM(plot_gradcam):
                result = plot_gradcam(path, model, model.layer2, transform, class_idx=class_idx)
            assert isinstance(result, tuple) and len(result) == 2, "Return a tuple (fig, cam)."
            fig, cam = result
            try:
                assert isinstance(fig, plt.Figure), f"fig must be a matplotlib Figure, got {type(fig)}."
                with Image.open(path) as img:
                    x = transform(img)[None]
                want, logits = _reference(model, model.layer2, x, class_idx)
                assert_tensor(f"cam for {Path(path).name} (class_idx={class_idx})",
                              cam[None] if type(cam) is torch.Tensor and cam.dim() == 2 else cam,
                              want, atol=1e-5,
                              hint="cam is the (H, W) Grad-CAM of the transformed image, for "
                                   "class_idx or, if None, the predicted class.")
                panels = [ax for ax in fig.axes if ax.get_images()]
                assert len(panels) >= 2, (
                    f"Draw two image panels (original, overlay); found {len(panels)}.")
                probs = torch.softmax(logits, 1)[0]
                pred = int(probs.argmax())
                text = _texts(fig)
                name, p = ref.CLASSES[pred], f"{float(probs[pred]):.2f}"
                assert name in text and p in text, (
                    f"The title must name the predicted class and its probability with two "
                    f"decimals ('{name}', '{p}'); the figure's titles read: {text!r}.")
            finally:
                plt.close(fig)


def check_plot_gradcam_missing(plot_gradcam):
    model = SmallResNet(in_channels=1, num_classes=2, seed=9)
    missing = Path(tempfile.gettempdir()) / "no_such_dir_gradcam" / "missing_slice.png"
    try:
        with _ReferenceGradCAM(plot_gradcam):
            plot_gradcam(missing, model, model.layer2, _transform())
    except FileNotFoundError as err:
        assert "missing_slice.png" in str(err), (
            f"The FileNotFoundError must name the path; its message was: {err}")
    else:
        raise AssertionError("A missing file must raise FileNotFoundError.")
    finally:
        import matplotlib.pyplot as plt

        plt.close("all")


# --- exercise 4: pointing games ------------------------------------------------------------------

def _cases():
    """Maps and masks (6, 6, 8): hit, miss, tie half outside, constant map, hit with a strong
    second peak outside, empty mask."""
    cams = torch.zeros(6, 6, 8)
    masks = torch.zeros(6, 6, 8, dtype=torch.bool)
    masks[:, 1:3, 1:4] = True
    cams[0, 2, 2] = 1.0                      # hit
    cams[1, 5, 7] = 1.0                      # miss
    cams[2, 2, 3] = cams[2, 2, 4] = 0.8      # tie: one maximum inside, one outside → miss
    cams[3] = 0.5                            # constant map → miss
    cams[4, 1, 1], cams[4, 4, 6] = 0.9, 0.85  # maximum inside → hit
    cams[5, 2, 2] = 1.0                      # but an empty mask → miss
    masks[5] = False
    return cams, masks


def check_pointing_game(pointing_game):
    pointing_game = refusing_package_answers(pointing_game, CHAPTER)
    cams, masks = _cases()
    got = pointing_game(cams.clone(), masks.clone())
    want = ref.pointing_game(cams, masks)
    labels = ["clear hit", "clear miss", "tie with a maximum outside the mask", "constant map",
              "maximum inside, second peak outside", "empty mask"]
    assert type(got) is torch.Tensor and tuple(got.shape) == (6,), (
        "Return a (N,) tensor with 1.0 for a hit and 0.0 for a miss.")
    wrong = [f"{label} → expected {float(w):.0f}, got {float(g):g}"
             for label, g, w in zip(labels, got.float(), want) if float(g) != float(w)]
    assert not wrong, "Wrong pointing-game results: " + "; ".join(wrong) + (
        ". A hit needs every pixel at the maximum (within 1e-6) inside the mask, so ties and "
        "constant maps are misses.")
    gen = torch.Generator().manual_seed(14)
    cams = torch.rand(5, 9, 7, generator=gen)
    masks = torch.rand(5, 9, 7, generator=gen) > 0.6
    assert_tensor("pointing game on random maps", pointing_game(cams, masks).float(),
                  ref.pointing_game(cams, masks), atol=0)
    try:
        pointing_game(torch.rand(2, 4, 4), torch.ones(2, 4, 5, dtype=torch.bool))
    except ValueError:
        pass
    else:
        raise AssertionError("Maps and masks of different shapes must raise ValueError.")


def check_energy_pointing_game(energy_pointing_game):
    energy_pointing_game = refusing_package_answers(energy_pointing_game, CHAPTER)
    gen = torch.Generator().manual_seed(15)
    cams = torch.rand(4, 9, 11, generator=gen) ** 3
    masks = torch.rand(4, 9, 11, generator=gen) > 0.7
    cams[3] = 0.0  # an all-zero map has no mass to place: 0, not NaN
    assert_tensor("energy pointing game", energy_pointing_game(cams.clone(), masks.clone()),
                  ref.energy_pointing_game(cams, masks), atol=1e-5,
                  hint="Share of the map's mass inside the mask: sum(cam · mask) / sum(cam) per "
                       "image, 0 for an all-zero map.")
    try:
        energy_pointing_game(torch.rand(2, 4, 4), torch.ones(3, 4, 4, dtype=torch.bool))
    except ValueError:
        pass
    else:
        raise AssertionError("Maps and masks of different shapes must raise ValueError.")
