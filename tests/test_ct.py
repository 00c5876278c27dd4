"""Chapter 3's data and models: the Kaggle loader on a fixture folder in the dataset's layout, the
synthetic generator, the shortcut tools, the grey ResNet18/DenseNet121 and the reference
GradCAM against pytorch-grad-cam."""

import numpy as np
import pytest
import torch
from PIL import Image

from gradcam_course import ct


@pytest.fixture
def kaggle_folder(tmp_path):
    """New_Data_CoV2/{Covid,Healthy,Others}/<patient>/<slice>.png with PNGs of mixed size and mode."""
    rng = np.random.default_rng(0)
    root = tmp_path / "download" / "New_Data_CoV2"
    layout = {"Covid": 6, "Healthy": 4, "Others": 2}
    for cls, patients in layout.items():
        for p in range(1, patients + 1):
            folder = root / cls / f"Patient {p}"
            folder.mkdir(parents=True)
            for s in range(3):
                h, w = rng.integers(40, 70, size=2)
                if (p + s) % 2:
                    img = Image.fromarray(rng.integers(0, 255, (h, w), dtype=np.uint8), mode="L")
                else:
                    img = Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), mode="RGB")
                img.save(folder / f"{s + 1}.png")
    (root / "Covid" / "Patient 1" / "notes.txt").write_text("not an image")
    return tmp_path / "download"


def test_kaggle_layout_is_read_with_patients_and_labels(kaggle_folder):
    slices = ct.read_ct_folder(kaggle_folder, size=32)
    assert slices.images.shape == (30, 1, 32, 32)  # 10 patients × 3 slices, "Others" left out
    assert slices.images.dtype == torch.float32 and 0 <= slices.images.min() <= slices.images.max() <= 1
    assert slices.counts() == [12, 18]
    assert len(torch.unique(slices.patients)) == 10
    for p in torch.unique(slices.patients):  # one label per patient
        assert len(torch.unique(slices.labels[slices.patients == p])) == 1


def test_real_mode_loads_the_folder_and_splits_by_patient(kaggle_folder, monkeypatch, capsys):
    monkeypatch.setenv(ct.CT_DIR_ENV, str(kaggle_folder))
    splits = ct.load_ct_scans(mode="real", size=32)
    assert splits.source == "kaggle" and not splits.has_masks
    parts = [set(getattr(splits, n).patients.tolist()) for n in ("train", "val", "test")]
    assert not (parts[0] & parts[1] or parts[0] & parts[2] or parts[1] & parts[2])
    assert sum(map(len, parts)) == 10
    assert sum(len(getattr(splits, n)) for n in ("train", "val", "test")) == 30
    assert "real, Kaggle" in capsys.readouterr().out


def test_missing_kaggle_credentials_say_what_to_do(tmp_path, monkeypatch):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", ct.CT_DIR_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    with pytest.raises(PermissionError, match="KAGGLE_USERNAME and KAGGLE_KEY"):
        ct.download_ct(tmp_path / "data")
    with pytest.raises(RuntimeError, match="Kaggle credentials"):
        ct.load_ct_scans(mode="real", root=tmp_path / "data")


def test_auto_mode_falls_back_to_synthetic_and_says_why(tmp_path, monkeypatch, capsys):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY", ct.CT_DIR_ENV):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "no-kaggle"))
    splits = ct.load_ct_scans(mode="auto", root=tmp_path / "data", fast=True)
    out = capsys.readouterr().out
    assert splits.source == "synthetic" and splits.has_masks
    assert "OFFLINE fallback" in out and "Missing Kaggle credentials" in out


def test_credentials_come_from_kaggle_json_and_are_not_printed(tmp_path, monkeypatch, capsys):
    for var in ("KAGGLE_USERNAME", "KAGGLE_KEY"):
        monkeypatch.delenv(var, raising=False)
    (tmp_path / "kaggle.json").write_text('{"username": "student", "key": "s3cret-key"}')
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path))
    assert ct.kaggle_credentials() == {"username": "student", "key": "s3cret-key"}
    assert "s3cret" not in capsys.readouterr().out


def test_a_folder_without_class_folders_is_a_clear_error(tmp_path):
    (tmp_path / "images").mkdir()
    with pytest.raises(FileNotFoundError, match="Covid"):
        ct.read_ct_folder(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        ct.read_ct_folder(tmp_path / "nowhere")


def test_synthetic_slices_are_seeded_imbalanced_and_masked():
    a = ct.synthetic_ct(n_patients=20, slices_per_patient=3, size=48, seed=3)
    b = ct.synthetic_ct(n_patients=20, slices_per_patient=3, size=48, seed=3)
    assert torch.equal(a.images, b.images) and torch.equal(a.masks, b.masks)
    assert not torch.equal(a.images, ct.synthetic_ct(20, 3, 48, seed=4).images)
    assert a.counts() == [18, 42]  # 70 % covid patients
    covid = a.labels == 1
    assert a.masks[covid].flatten(1).any(1).all(), "every covid slice has a lesion"
    assert not a.masks[~covid].any(), "healthy slices have none"
    # lesions lie in the lungs (dark fields) and are brighter than the lung around them
    lesion = a.images[:, 0][a.masks]
    assert 0.1 < float(lesion.mean()) < 0.6


def test_split_by_patient_keeps_patients_whole_and_both_classes():
    slices = ct.synthetic_ct(n_patients=40, slices_per_patient=2, size=32, seed=0)
    parts = ct.split_by_patient(slices, seed=0)
    seen = [set(p.patients.tolist()) for p in parts]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert all(set(p.labels.tolist()) == {0, 1} for p in parts)


def test_synthetic_splits_hold_out_the_requested_share_of_patients():
    for share in (0.25, 0.4):
        splits = ct.load_synthetic_ct(size=32, n_patients=40, slices_per_patient=2, test_share=share)
        assert len(torch.unique(splits.test.patients)) == round(40 * share)
        assert splits.test.masks is not None and splits.test.masks[splits.test.labels == 1].flatten(1).any(1).all()


def test_scanner_label_follows_patients_and_the_border_mask_removes_it():
    slices = ct.synthetic_ct(n_patients=30, slices_per_patient=2, size=50, seed=1)
    marked, flags = ct.with_scanner_label(slices, rates=(0.0, 1.0), seed=0)
    assert torch.equal(flags, slices.labels == 1)
    region = ct.marker_region(50)
    assert bool((marked.images[flags][:, 0][:, region] == 1.0).any(1).all())
    assert torch.equal(marked.images[~flags], slices.images[~flags])
    painted = ct.add_marker(torch.zeros(1, 1, 50, 50))[0, 0] == 1.0
    assert painted.any() and bool(region[painted].all())
    blanked = ct.mask_border(marked.images)
    assert float(blanked[:, 0][:, painted].max()) == 0.0
    inner = slice(8, 42)
    assert torch.equal(blanked[..., inner, inner], marked.images[..., inner, inner])


def test_grey_stem_matches_the_rgb_network_on_three_copies():
    conv = torch.nn.Conv2d(3, 5, 3, padding=1)
    stem = ct._grey_stem(conv)
    x = torch.rand(2, 1, 9, 9)
    want = conv((x.expand(-1, 3, -1, -1) - ct.GREY_MEAN) / ct.GREY_STD)
    torch.testing.assert_close(stem(x), want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("build,layer", [(ct.build_resnet18, "layer4"), (ct.build_densenet121, "features")])
def test_models_take_grey_slices_and_keep_a_finer_map(build, layer, capsys):
    model = build(mode="offline").eval()
    assert "FROM SCRATCH" in capsys.readouterr().out
    kept = {}
    target = getattr(model, layer)
    handle = target.register_forward_hook(lambda m, i, o: kept.update(shape=o.shape))
    with torch.no_grad():
        logits = model(torch.rand(2, 1, 96, 96))
    handle.remove()
    assert logits.shape == (2, 2)
    assert tuple(kept["shape"][-2:]) == (6, 6)  # output stride 16


def test_reference_gradcam_matches_pytorch_grad_cam_on_resnet18():
    from pytorch_grad_cam import GradCAM as PGCGradCAM
    from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

    from autograder.reference.ch03_resnet_covid_ct import GradCAM

    torch.manual_seed(0)
    model = ct.build_resnet18(mode="offline", output_stride=32, verbose=False).eval()
    x = torch.rand(3, 1, 64, 64)
    with GradCAM(model, model.layer4) as cam:
        ours = cam(x, [0, 1, 1])
    with PGCGradCAM(model=model, target_layers=[model.layer4]) as pgc:
        theirs = pgc(input_tensor=x, targets=[ClassifierOutputTarget(c) for c in (0, 1, 1)])
    assert float((ours - torch.from_numpy(theirs)).abs().max()) < 1e-4


@pytest.mark.parametrize("name", ["resnet18", "densenet121"])
def test_real_imagenet_weights_load_from_torch_home(name, tmp_path, monkeypatch, capsys):
    """The pretrained path on local files in torchvision's format and place (no download)."""
    import torchvision.models as tvm

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    state = getattr(tvm, name)(weights=None).state_dict()
    weights = {"resnet18": tvm.ResNet18_Weights, "densenet121": tvm.DenseNet121_Weights}[name]
    checkpoints = tmp_path / "hub" / "checkpoints"
    checkpoints.mkdir(parents=True)
    torch.save(state, checkpoints / weights.IMAGENET1K_V1.url.rsplit("/", 1)[-1])
    model = getattr(ct, f"build_{name}")(mode="real")
    assert "ImageNet weights" in capsys.readouterr().out
    if name == "resnet18":
        stem, rgb, inner = model.conv1.conv, state["conv1.weight"], ("layer3.0.conv1.weight", model.layer3[0].conv1)
    else:
        stem, rgb = model.features.conv0.conv, state["features.conv0.weight"]
        inner = ("features.denseblock2.denselayer1.conv1.weight",
                 model.features.denseblock2.denselayer1.conv1)
    torch.testing.assert_close(stem.weight, rgb.sum(1, keepdim=True))
    assert torch.equal(inner[1].weight, state[inner[0]])
