"""Probes of chapter 3: each builds a check's seeded inputs, calls the student's function (or
uses the student's GradCAM class) and returns what it saw (maps, logits, hooks left behind,
errors raised, the figure's panels and titles)."""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from autograder.probes.basic_models import SmallResNet, randn_images
from autograder.probes.common import attempt, hook_count, raised, refusing_package_answers

CHAPTER = "03_resnet_covid_ct"

warnings.filterwarnings("ignore")  # stderr in a graded cell costs its points


class Boom(Exception):
    pass


def other_classes(model, x, num_classes=3):
    """One class per image, never the predicted one."""
    with torch.no_grad():
        pred = model(x).argmax(1)
    return [(int(p) + 1 + i % (num_classes - 1)) % num_classes for i, p in enumerate(pred)]


# --- inputs shared with the verdicts (built the same, bit for bit, on both sides) --------------

def values_inputs():
    model = SmallResNet()
    x = randn_images(h=12, w=15)
    return model, x, other_classes(model, x)


def inplace_inputs():
    model = SmallResNet(seed=3)
    x = randn_images(n=3, h=10, w=13, seed=4)
    return model, x, other_classes(model, x)


def inplace_layer(model):
    return model.layer2[1].bn2


def hooks_inputs():
    return SmallResNet(seed=5), randn_images(n=2, h=12, w=15, seed=6)


HOOKS_CLASS_IDX = (None, 1)  # the two calls inside one `with` block


def class_idx_inputs():
    return SmallResNet(seed=7), randn_images(n=3, h=11, w=9, seed=8)


CLASS_IDX_CASES = (("None", None), ("an int (2)", 2), ("a tensor", torch.tensor([2, 0, 1])))


def weight_counts():
    """Fresh each time: the student's function may change what it is given."""
    return ([180, 420], (30, 5, 65), np.array([7, 7]), torch.tensor([1, 999]))


def plot_model():
    return SmallResNet(in_channels=1, num_classes=2, seed=9)


PLOT_SIZE = (20, 24)


def transform_to(size=(20, 20)):
    from PIL import Image

    def transform(image):
        grey = image.convert("L").resize(size[::-1], Image.BILINEAR)
        return torch.from_numpy(np.asarray(grey, dtype=np.float32) / 255.0)[None]

    return transform


def write_slices(folder: Path):
    """A grey PNG and an RGB JPEG in ``folder``; the (path, class_idx) cases of the plot check."""
    from PIL import Image

    rng = np.random.default_rng(10)
    grey = Path(folder) / "slice grey.png"
    Image.fromarray(rng.integers(0, 255, (37, 41), dtype=np.uint8), mode="L").save(grey)
    rgb = Path(folder) / "slice_rgb.jpg"
    Image.fromarray(rng.integers(0, 255, (30, 30, 3), dtype=np.uint8), mode="RGB").save(rgb)
    return ((grey, None), (rgb, None), (str(grey), 0), (rgb, 1))


def model_input(path, transform):
    """The batch the plotted map is of: the file, opened and transformed."""
    from PIL import Image

    with Image.open(path) as img:
        return transform(img)[None]


MISSING_NAME = "missing_slice.png"


def missing_path():
    return Path(tempfile.gettempdir()) / "no_such_dir_gradcam" / MISSING_NAME


def pointing_cases():
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


POINTING_LABELS = ("clear hit", "clear miss", "tie with a maximum outside the mask", "constant map",
                   "maximum inside, second peak outside", "empty mask")


def random_pointing_inputs():
    gen = torch.Generator().manual_seed(14)
    cams = torch.rand(5, 9, 7, generator=gen)
    masks = torch.rand(5, 9, 7, generator=gen) > 0.6
    return cams, masks


def energy_inputs():
    gen = torch.Generator().manual_seed(15)
    cams = torch.rand(4, 9, 11, generator=gen) ** 3
    masks = torch.rand(4, 9, 11, generator=gen) > 0.7
    cams[3] = 0.0  # an all-zero map has no mass to place: 0, not NaN
    return cams, masks


# --- exercise 3's stand-in for the student's GradCAM ---------------------------------------------

class StandInGradCAM:
    """Put in place of the student's ``GradCAM`` while their ``plot_gradcam`` runs, so that a
    mistake in exercise 2 is not charged again in exercise 3.

    It is not Grad-CAM (the probes carry no answers): its "map" is one channel of the target
    layer's output, chosen by the class, less the channel mean, upsampled (nearest) to the input
    size and min-max normalised. It therefore depends on the image, the layer and the class it is
    asked for, like a real map, and the verdict recomputes it (:func:`stand_in_maps`). ``logits``
    are the model's detached logits, as in the exercise.
    """

    def __init__(self, model, target_layer):
        self.model, self.target_layer = model, target_layer
        self.handle, self.activations, self.logits = None, None, None

    def _keep(self, module, inputs, output):
        self.activations = output.detach().clone()

    def __enter__(self):
        self.handle = self.target_layer.register_forward_hook(self._keep)
        return self

    def __exit__(self, exc_type, exc, tb):
        if self.handle is not None:
            self.handle.remove()
            self.handle = None
        return False

    def __call__(self, images, class_idx=None):
        with torch.no_grad():
            logits = self.model(images)
        self.logits = logits.detach()
        if class_idx is None:
            idx = logits.argmax(1)
        else:
            idx = torch.as_tensor(class_idx).reshape(-1).long().expand(len(logits))
        acts = self.activations
        channels = ((3 * idx + 1) % acts.shape[1]).to(acts.device)
        picked = acts[torch.arange(len(acts), device=acts.device), channels] - acts.mean(1)
        up = F.interpolate(picked[:, None].float(), size=tuple(images.shape[-2:]), mode="nearest")[:, 0]
        lo = up.flatten(1).min(1).values[:, None, None]
        hi = up.flatten(1).max(1).values[:, None, None]
        return (up - lo) / (hi - lo + 1e-7)


def stand_in_maps(model, layer, x, class_idx):
    """What the stand-in returns for ``x`` and ``class_idx`` (the verdict's expectation)."""
    with StandInGradCAM(model, layer) as cam:
        return cam(x, class_idx)


class _StandInFor:
    """Within the block, the student's function sees :class:`StandInGradCAM` as ``GradCAM``;
    ``calls`` counts the maps it was asked for."""

    def __init__(self, function):
        self.globals = getattr(function, "__globals__", {})
        self.calls = 0

    def __enter__(self):
        self.saved = self.globals.get("GradCAM", None)
        if "GradCAM" in self.globals:
            swap = self

            class GradCAM(StandInGradCAM):
                def __call__(self, images, class_idx=None):
                    swap.calls += 1
                    return super().__call__(images, class_idx)

            self.globals["GradCAM"] = GradCAM
        return self

    def __exit__(self, *exc):
        if self.saved is not None:
            self.globals["GradCAM"] = self.saved
        return False


def _texts(fig):
    texts = [fig._suptitle.get_text()] if fig._suptitle is not None else []
    return " | ".join(texts + [ax.get_title() for ax in fig.axes])


def _plot_once(plot_gradcam, path, model, transform, class_idx):
    """One call of the student's plot_gradcam, as plain data; its figure is closed."""
    import matplotlib.pyplot as plt

    with _StandInFor(plot_gradcam) as swap:
        result = plot_gradcam(path, model, model.layer2, transform, class_idx=class_idx)
    seen = {"pair": isinstance(result, tuple) and len(result) == 2, "stand_in_calls": swap.calls}
    if not seen["pair"]:
        return seen
    fig, cam = result
    try:
        seen["is_figure"] = isinstance(fig, plt.Figure)
        seen["fig_type"] = repr(type(fig))
        seen["cam"] = cam
        if seen["is_figure"]:
            seen["panels"] = len([ax for ax in fig.axes if ax.get_images()])
            seen["text"] = _texts(fig)
    finally:
        if isinstance(fig, plt.Figure):
            plt.close(fig)
    return seen


# --- exercise 1: class_weights -------------------------------------------------------------------

def probe_class_weights(class_weights):
    return {"weights": [class_weights(counts) for counts in weight_counts()],
            "zero_count": raised(class_weights, [10, 0])}


# --- exercise 2: the GradCAM context manager -----------------------------------------------------

def _maps(GradCAM, model, layer, x, class_idx):
    with GradCAM(model, layer) as cam:
        return cam(x, class_idx), cam


def probe_gradcam_values(GradCAM):
    model, x, classes = values_inputs()
    maps, _ = _maps(GradCAM, model, model.layer2, x, classes)
    with torch.no_grad():  # as evaluation code often calls it: the forward must enable gradients
        under_no_grad = attempt(lambda: _maps(GradCAM, model, model.layer2, x, classes)[0])
    return {"maps": maps, "under_no_grad": under_no_grad}


def probe_gradcam_inplace(GradCAM):
    model, x, classes = inplace_inputs()
    maps, _ = _maps(GradCAM, model, inplace_layer(model), x, classes)
    return {"maps": maps}


def probe_gradcam_hooks(GradCAM):
    model, x = hooks_inputs()
    with GradCAM(model, model.layer2) as cam:
        maps = [cam(x, class_idx) for class_idx in HOOKS_CLASS_IDX]  # two calls in one block
    seen = {"maps": maps, "hooks": hook_count(model)}
    try:
        with GradCAM(model, model.layer2) as cam:
            cam(x, None)
            raise Boom("raised inside the with block (hidden test)")
    except Boom:
        seen["swallowed"] = False
    else:
        seen["swallowed"] = True
    seen["hooks_after_error"] = hook_count(model)
    return seen


def probe_gradcam_class_idx(GradCAM):
    model, x = class_idx_inputs()
    maps = []
    for _, class_idx in CLASS_IDX_CASES:
        got, cam = _maps(GradCAM, model, model.layer2, x, class_idx)
        maps.append(got)
    return {"maps": maps, "logits": getattr(cam, "logits", None)}


# --- exercise 3: plot_gradcam --------------------------------------------------------------------

def probe_plot_gradcam(plot_gradcam):
    model, transform = plot_model(), transform_to(PLOT_SIZE)
    with tempfile.TemporaryDirectory() as tmp:
        return {"cases": [_plot_once(plot_gradcam, path, model, transform, class_idx)
                          for path, class_idx in write_slices(Path(tmp))]}


def probe_plot_gradcam_missing(plot_gradcam):
    import matplotlib.pyplot as plt

    model = plot_model()
    seen = {"error": None, "message": None}
    try:
        with _StandInFor(plot_gradcam):
            plot_gradcam(missing_path(), model, model.layer2, transform_to())
    except FileNotFoundError as err:
        seen["error"], seen["message"] = type(err).__name__, str(err)
    finally:
        plt.close("all")
    # One file that is there, so that these points also need a working plot_gradcam.
    with tempfile.TemporaryDirectory() as tmp:
        path, class_idx = write_slices(Path(tmp))[0]
        seen["present"] = _plot_once(plot_gradcam, path, model, transform_to(PLOT_SIZE), class_idx)
    return seen


# --- exercise 4: pointing games ------------------------------------------------------------------

def probe_pointing_game(pointing_game):
    pointing_game = refusing_package_answers(pointing_game, CHAPTER)
    cams, masks = pointing_cases()
    seen = {"cases": pointing_game(cams.clone(), masks.clone())}
    seen["random"] = pointing_game(*random_pointing_inputs())
    seen["mismatch"] = raised(pointing_game, torch.rand(2, 4, 4), torch.ones(2, 4, 5, dtype=torch.bool))
    return seen


def probe_energy_pointing_game(energy_pointing_game):
    energy_pointing_game = refusing_package_answers(energy_pointing_game, CHAPTER)
    cams, masks = energy_inputs()
    return {"shares": energy_pointing_game(cams.clone(), masks.clone()),
            "mismatch": raised(energy_pointing_game, torch.rand(2, 4, 4),
                               torch.ones(3, 4, 4, dtype=torch.bool))}
