"""gradcam_course.training: Lightning training in fast mode, its history, prediction."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from gradcam_course.mnist import DigitsDataModule, LeNet  # noqa: E402
from gradcam_course.plotting import plot_training_curves  # noqa: E402
from gradcam_course.training import LitClassifier, TrainingResult, predict, train_classifier  # noqa: E402


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


