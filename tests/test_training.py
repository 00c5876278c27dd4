"""gradcam_course.training: Lightning training in fast mode, its history, prediction."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gradcam_course.mnist import DigitsDataModule, LeNet  # noqa: E402
from gradcam_course.plotting import plot_training_curves  # noqa: E402
from gradcam_course.training import (LitClassifier, SplitDataModule, TrainingResult, predict,  # noqa: E402
                                     train_classifier)


# --------------------------------------------------------------------------- training

@pytest.fixture(scope="module")
def trained():
    torch.manual_seed(0)
    lit = LitClassifier(LeNet(), 10)
    dm = DigitsDataModule(mode="offline", fast=True, verbose=False)
    result = train_classifier(lit, dm, fast=True, progress_bar=False)
    return lit, dm, result


def test_train_classifier_fast(trained):
    lit, dm, result = trained
    assert isinstance(result, TrainingResult)
    assert 0.0 <= result.test_acc <= 1.0
    assert np.isfinite(result.test_loss) and result.test_loss > 0
    assert result.epochs == 1
    assert len(result.history) == 1
    row = result.history[0]
    assert row["epoch"] == 0
    assert {"val_loss", "val_acc"} <= set(row)
    assert 0.0 <= row["val_acc"] <= 1.0
    assert not lit.training


def test_history_has_this_epochs_train_metrics(trained):
    _, _, result = trained
    row = result.history[0]
    assert {"train_loss", "train_acc", "val_loss", "val_acc"} <= set(row)
    fig = plot_training_curves(result.history)
    assert [len(ax.get_lines()) for ax in fig.axes[:2]] == [2, 2]


def test_predict_returns_logits_in_eval_mode(trained):
    lit, dm, _ = trained
    model = lit.model
    model.train()
    x = dm.splits.test.tensors[0][:37]
    logits = predict(model, x, batch_size=10)
    assert logits.shape == (37, 10)
    assert not logits.requires_grad
    assert not any(m.training for m in model.modules())
    with torch.no_grad():
        torch.testing.assert_close(logits, model(x))




# --------------------------------------------------------------------------- the model cache

def _tiny_training(images, seed=0):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                              torch.nn.Linear(4 * 6 * 6, 2))
    labels = torch.arange(len(images)) % 2
    parts = [torch.utils.data.TensorDataset(images, labels)] * 3
    lit = LitClassifier(net, 2)
    return lit, train_classifier(lit, SplitDataModule(*parts, batch_size=8), max_epochs=2,
                                 fast=False, progress_bar=False, seed=seed)


def test_the_same_training_is_reused_from_the_model_cache(tmp_path, monkeypatch, capsys):
    from gradcam_course.runtime import MODEL_CACHE_ENV

    images = torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    first_lit, first = _tiny_training(images)
    assert not first.cached  # no cache configured: it trains
    monkeypatch.setenv(MODEL_CACHE_ENV, str(tmp_path / "models"))
    lit, trained = _tiny_training(images)
    assert not trained.cached and len(list((tmp_path / "models").glob("*.pt"))) == 1
    after_training = torch.rand(3)
    capsys.readouterr()
    again_lit, again = _tiny_training(images)
    assert again.cached and "weights are reused" in capsys.readouterr().out
    assert torch.equal(torch.rand(3), after_training)  # the random state does not tell them apart
    assert (again.test_acc, again.history, again.epochs) == (trained.test_acc, trained.history, 2)
    for (name, value), (_, cached) in zip(lit.model.state_dict().items(),
                                          again_lit.model.state_dict().items()):
        assert torch.equal(value, cached), name
    assert not again_lit.training
    # A different input or seed is a different training.
    changed = images.clone()
    changed[0, 0, 0, 0] += 0.5
    assert not _tiny_training(changed)[1].cached
    assert not _tiny_training(images, seed=1)[1].cached
    assert len(list((tmp_path / "models").glob("*.pt"))) == 3
    assert not list((tmp_path / "models").glob("*.partial"))
