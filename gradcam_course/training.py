"""Lightning training shared by the chapters."""

from __future__ import annotations

import hashlib
import inspect
import os
from dataclasses import dataclass, field
from pathlib import Path

import lightning as L
import torch
import torchmetrics
from torch import nn
from torch.utils.data import DataLoader, Dataset, Subset, TensorDataset

from .runtime import MODEL_CACHE_ENV, fast_mode, interactive, quiet


class LitClassifier(L.LightningModule):
    """Wraps any classifier that returns logits: cross-entropy, Adam, accuracy metrics.

    ``num_classes=1`` is a binary classifier with a single logit (N, 1): ``BCEWithLogitsLoss``
    on float labels, which folds the sigmoid into the loss (stable where sigmoid + ``BCELoss``
    saturates); ``pos_weight`` weighs the positive class.
    """

    def __init__(self, model: nn.Module, num_classes: int, lr: float = 1e-3,
                 class_weights: torch.Tensor | None = None, cosine: bool = False,
                 pos_weight: torch.Tensor | None = None):
        super().__init__()
        self.model = model
        self.lr = lr
        # Cosine decay to 0 over the run: the last epochs take small steps, so the final model
        # is not caught mid-oscillation (BatchNorm networks trained from scratch on little data).
        self.cosine = cosine
        self.binary = num_classes == 1
        if self.binary:
            self.loss_fn = nn.BCEWithLogitsLoss(pos_weight=pos_weight)
            metric = dict(task="binary")
        else:
            self.loss_fn = nn.CrossEntropyLoss(weight=class_weights)
            metric = dict(task="multiclass", num_classes=num_classes)
        self.train_acc = torchmetrics.Accuracy(**metric)
        self.val_acc = torchmetrics.Accuracy(**metric)
        self.test_acc = torchmetrics.Accuracy(**metric)

    def forward(self, x):
        return self.model(x)

    def _step(self, batch, metric, stage):
        x, y = batch
        logits = self(x)
        if self.binary:
            logits = logits.squeeze(1)
            loss = self.loss_fn(logits, y.float())
            metric(torch.sigmoid(logits), y.long())
        else:
            loss = self.loss_fn(logits, y)
            metric(logits, y)
        self.log(f"{stage}_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        self.log(f"{stage}_acc", metric, prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def training_step(self, batch, batch_idx):
        return self._step(batch, self.train_acc, "train")

    def validation_step(self, batch, batch_idx):
        self._step(batch, self.val_acc, "val")

    def test_step(self, batch, batch_idx):
        self._step(batch, self.test_acc, "test")

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.lr)
        if not self.cosine:
            return optimizer
        steps = max(1, int(self.trainer.estimated_stepping_batches))
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": schedule, "interval": "step"}}


class SplitDataModule(L.LightningDataModule):
    """Lightning loaders over three datasets (train shuffled with a seeded generator)."""

    def __init__(self, train: Dataset, val: Dataset, test: Dataset, batch_size: int = 32,
                 seed: int = 0, num_workers: int = 0):
        super().__init__()
        self.parts = {"train": train, "val": val, "test": test}
        self.batch_size, self.seed, self.num_workers = batch_size, seed, num_workers

    def _loader(self, part: str, shuffle: bool = False):
        return DataLoader(self.parts[part], batch_size=self.batch_size, shuffle=shuffle,
                          num_workers=self.num_workers,
                          generator=torch.Generator().manual_seed(self.seed) if shuffle else None)

    def train_dataloader(self):
        return self._loader("train", shuffle=True)

    def val_dataloader(self):
        return self._loader("val")

    def test_dataloader(self):
        return self._loader("test")


class History(L.Callback):
    """Keeps the per-epoch metrics so the notebook can plot learning curves."""

    def __init__(self):
        self.epochs: list[dict[str, float]] = []

    # Validation runs inside the training epoch, so at its end both splits' metrics are in.
    def on_train_epoch_end(self, trainer, pl_module):
        metrics = {k: float(v) for k, v in trainer.callback_metrics.items()}
        metrics["epoch"] = trainer.current_epoch
        self.epochs.append(metrics)


@dataclass
class TrainingResult:
    test_acc: float
    test_loss: float
    history: list[dict[str, float]] = field(default_factory=list)
    epochs: int = 0
    #: True when the weights came from the model cache (``GRADCAM_COURSE_MODEL_CACHE``).
    cached: bool = False


def _digest_data(h, data) -> bool:
    """Feed a dataset's contents into ``h``; False for a dataset this cache cannot read."""
    if isinstance(data, TensorDataset):
        for t in data.tensors:
            h.update(f"{t.dtype}{tuple(t.shape)}".encode())
            h.update(t.detach().cpu().contiguous().numpy().tobytes())
        return True
    if isinstance(data, Subset):
        h.update(repr(list(data.indices)).encode())
        return _digest_data(h, data.dataset)
    return False


def training_key(lit: LitClassifier, datamodule: L.LightningDataModule, epochs: int,
                 seed: int) -> str | None:
    """A digest of everything that decides the trained weights: the initial weights and the
    architecture (``repr`` shows strides), the code of its layers and of this module, the loss
    and optimiser settings, the three datasets, the epochs, batch size and seed, and the library
    versions. None when the data module is not one whose datasets it can read (then nothing is
    cached)."""
    if not isinstance(datamodule, SplitDataModule):
        return None
    h = hashlib.sha256()
    # This module's code and that of every layer class in the model (a changed forward counts).
    sources = {Path(__file__)} | {Path(f) for m in lit.model.modules()
                                  if (f := inspect.getsourcefile(type(m)))}
    for source in sorted(sources):
        h.update(source.read_bytes())
    h.update(f"{torch.__version__} {L.__version__} {type(lit.model).__qualname__}".encode())
    h.update(repr(lit.model).encode())
    for name, value in lit.model.state_dict().items():
        h.update(name.encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    loss_weight = getattr(lit.loss_fn, "weight", None) if not lit.binary else lit.loss_fn.pos_weight
    h.update(repr((lit.lr, lit.cosine, lit.binary, type(lit.loss_fn).__name__)).encode())
    if loss_weight is not None:
        h.update(loss_weight.detach().cpu().numpy().tobytes())
    h.update(repr((epochs, seed, datamodule.batch_size, datamodule.seed)).encode())
    for part in ("train", "val", "test"):
        h.update(part.encode())
        if not _digest_data(h, datamodule.parts[part]):
            return None
    return h.hexdigest()[:16]


def _cache_file(lit, datamodule, epochs, seed, fast) -> Path | None:
    folder = os.environ.get(MODEL_CACHE_ENV)
    if not folder or fast:
        return None
    key = training_key(lit, datamodule, epochs, seed)
    return None if key is None else Path(folder) / f"{type(lit.model).__name__}-{key}.pt"


def train_classifier(lit: LitClassifier, datamodule: L.LightningDataModule,
                     max_epochs: int = 10, fast: bool | None = None,
                     progress_bar: bool | None = None, seed: int = 0) -> TrainingResult:
    """Fit, then test. In fast mode (grading, tests) one short epoch is enough: graded
    functions are checked on their own inputs, never on how well this model trained.

    With ``GRADCAM_COURSE_MODEL_CACHE`` set (the book build sets it), a training whose every
    input is the same as an earlier one's (see :func:`training_key`) loads that training's
    weights and numbers instead of running again, and says so; an empty cache trains."""
    quiet()
    fast = fast_mode() if fast is None else fast
    epochs = 1 if fast else max_epochs
    cache = _cache_file(lit, datamodule, epochs, seed, fast)
    if cache is not None and cache.is_file():
        saved = torch.load(cache, map_location="cpu", weights_only=True)
        lit.model.load_state_dict(saved["state_dict"])
        lit.eval()
        L.seed_everything(seed + 1, verbose=False)  # what follows runs as after a training
        print(f"{type(lit.model).__name__}: the same training (code, initial weights, data, "
              f"settings, seed) already ran in this build: its weights are reused "
              f"(model cache {cache.stem}).")
        return TrainingResult(saved["test_acc"], saved["test_loss"], saved["history"],
                              saved["epochs"], cached=True)
    L.seed_everything(seed, verbose=False)
    history = History()
    trainer = L.Trainer(
        max_epochs=epochs,
        accelerator="auto",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=interactive() if progress_bar is None else progress_bar,
        limit_train_batches=4 if fast else 1.0,
        limit_val_batches=2 if fast else 1.0,
        num_sanity_val_steps=0,
        callbacks=[history],
        # "warn", not True: on a GPU some backward kernels have no deterministic version.
        deterministic="warn",
    )
    trainer.fit(lit, datamodule=datamodule)
    (metrics,) = trainer.test(lit, datamodule=datamodule, verbose=False)
    lit.eval()
    L.seed_everything(seed + 1, verbose=False)  # the same state as after a cached training
    result = TrainingResult(metrics["test_acc"], metrics["test_loss"], history.epochs, epochs)
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        partial = cache.with_suffix(".partial")
        torch.save({"state_dict": lit.model.state_dict(), "test_acc": float(result.test_acc),
                    "test_loss": float(result.test_loss), "history": result.history,
                    "epochs": epochs}, partial)
        partial.replace(cache)  # never a half-written file under the final name
    return result


@torch.no_grad()
def predict(model: nn.Module, images: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """Logits for a tensor of images, in eval mode, batched."""
    model.eval()
    device = next(model.parameters()).device
    return torch.cat([model(images[i:i + batch_size].to(device)).cpu()
                      for i in range(0, len(images), batch_size)])
