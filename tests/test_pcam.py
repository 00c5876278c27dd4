"""Chapter 4's data and model: PCam's HDF5 layout read lazily, synthetic patches, the small CNN."""

import gzip
import shutil

import h5py
import numpy as np
import pytest
import torch

from gradcam_course import pcam


@pytest.fixture(scope="module")
def patches():
    return pcam.synthetic_pcam(120, seed=3)


@pytest.fixture()
def pcam_folder(tmp_path, patches):
    """The six PCam files in their exact layout, written from synthetic patches."""
    for k, split in enumerate(pcam.SPLITS):
        pcam.write_pcam_h5(tmp_path / "pcam", split, patches.select(torch.arange(k, 120, 1 + k)))
    return tmp_path / "pcam"


def test_synthetic_patches_follow_the_pcam_rule(patches):
    assert patches.images.shape == (120, 3, 96, 96) and patches.images.dtype == torch.uint8
    centre = pcam.centre_region(96)
    touches = (patches.masks & centre).flatten(1).any(1)
    assert torch.equal(touches.long(), patches.labels)  # positive iff tumour in the centre 32×32
    assert 0.35 < patches.labels.float().mean() < 0.65
    outside = patches.masks.flatten(1).any(1) & (patches.labels == 0)
    assert outside.sum() >= 5  # negatives with tumour elsewhere, as in the real data
    again = pcam.synthetic_pcam(120, seed=3)
    assert torch.equal(again.images, patches.images) and torch.equal(again.masks, patches.masks)
    assert not torch.equal(pcam.synthetic_pcam(120, seed=4).images, patches.images)


def test_tumour_nuclei_are_darker_than_the_stroma(patches):
    img = patches.floats().mean(1)  # (N, S, S) brightness
    tumour = img[patches.masks].mean()
    normal = img[~patches.masks].mean()
    assert tumour < normal - 0.1


def test_centre_region_is_32_of_96():
    region = pcam.centre_region(96)
    assert region.sum() == 32 * 32 and region[32, 32] and region[63, 63] and not region[64, 64]


def test_fixture_files_have_the_real_layout(pcam_folder):
    with h5py.File(pcam_folder / pcam.h5_name("val", "x")) as f:
        assert f["x"].dtype == np.uint8 and f["x"].shape[1:] == (96, 96, 3)
    with h5py.File(pcam_folder / pcam.h5_name("val", "y")) as f:
        assert f["y"].dtype == np.uint8 and f["y"].shape[1:] == (1, 1, 1)


def test_real_loader_reads_a_stratified_subset_lazily(pcam_folder, patches, monkeypatch):
    monkeypatch.setenv(pcam.PCAM_DIR_ENV, str(pcam_folder))
    splits = pcam.load_pcam("real", sizes=(40, 20, 20), verbose=False)
    assert splits.source == "pcam"
    train = splits.train
    assert isinstance(train, pcam.H5Patches) and len(train) == 40
    full = pcam.read_labels(pcam_folder / pcam.h5_name("train", "y"))
    assert abs(full[train.indices].float().mean() - full.float().mean()) < 0.05  # stratified
    assert torch.all(train.indices[1:] > train.indices[:-1])
    image, label = train[3]
    j = int(train.indices[3])  # the training file holds patches[0::1]
    assert torch.equal((image * 255).round().byte(), patches.images[j])
    assert label == patches.labels[j].float()
    assert train._file is not None and train.__getstate__()["_file"] is None  # picklable for workers
    # the test split is read into memory in one go, order kept; its evidence is the centre region
    test = splits.test
    assert isinstance(test, pcam.Patches) and len(test) == 20 and test.masks is None
    ev = test.evidence()
    assert torch.equal(ev.flatten(1).any(1).long(), test.labels)
    assert torch.equal(ev[test.labels == 1][0], pcam.centre_region(96))


def test_gzipped_files_are_unpacked(pcam_folder):
    name = pcam.h5_name("test", "y")
    with open(pcam_folder / name, "rb") as src, gzip.open(pcam_folder / (name + ".gz"), "wb") as dst:
        shutil.copyfileobj(src, dst)
    original = pcam.read_labels(pcam_folder / name)
    (pcam_folder / name).unlink()
    files = pcam.find_pcam_files(pcam_folder)
    assert files["test", "y"] == pcam_folder / name
    assert torch.equal(pcam.read_labels(files["test", "y"]), original)


def test_missing_files_name_what_to_download(tmp_path, pcam_folder, monkeypatch):
    (pcam_folder / pcam.h5_name("val", "x")).unlink()
    with pytest.raises(FileNotFoundError, match="camelyonpatch_level_2_split_valid_x.h5"):
        pcam.find_pcam_files(pcam_folder)
    monkeypatch.setenv(pcam.PCAM_DIR_ENV, str(tmp_path / "nowhere"))
    with pytest.raises(RuntimeError, match=pcam.PCAM_DIR_ENV):
        pcam.load_pcam("real", verbose=False)


def test_auto_mode_falls_back_and_says_why(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv(pcam.PCAM_DIR_ENV, str(tmp_path / "nowhere"))
    splits = pcam.load_pcam("auto", sizes=(16, 8, 8))
    out = capsys.readouterr().out
    assert splits.source == "synthetic" and "OFFLINE fallback" in out and "nowhere" in out
    assert splits.test.masks is not None and len(splits.train) == 16


def test_patch_cnn_has_one_logit_and_a_12x12_target_layer():
    model = pcam.PatchCNN().eval()
    x = torch.rand(2, 3, 96, 96)
    assert model(x).shape == (2, 1)
    assert model.features[-1](model.features[:-1](x)).shape == (2, 64, 12, 12)


def test_binary_training_uses_bce_with_logits():
    from gradcam_course.training import LitClassifier, train_classifier

    splits = pcam.load_synthetic_pcam((64, 32, 32), size=48)
    lit = LitClassifier(pcam.PatchCNN(widths=(8, 8, 8, 8)), num_classes=1, lr=3e-3)
    assert isinstance(lit.loss_fn, torch.nn.BCEWithLogitsLoss)
    result = train_classifier(lit, pcam.PCamDataModule(splits, batch_size=16), fast=True,
                              progress_bar=False)
    assert 0.0 <= result.test_acc <= 1.0 and np.isfinite(result.test_loss)
