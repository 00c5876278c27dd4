"""The helper package's explanation metrics: pointing games, insertion/deletion for one logit and
for several, rank correlation, the cascading randomisation of the sanity check."""

import pytest
import torch
from torch import nn

from gradcam_course import metrics


def test_pointing_game_ties_and_empty_masks():
    masks = torch.zeros(3, 3, 3, dtype=torch.bool)
    masks[:2, 0, 0] = True
    cams = torch.stack([torch.eye(3) * torch.tensor([1.0, 0.5, 0.2]), torch.ones(3, 3), torch.eye(3)])
    assert metrics.pointing_game(cams, masks).tolist() == [1.0, 0.0, 0.0]
    two_peaks = torch.zeros(1, 3, 3)
    two_peaks[0, 0, 0] = two_peaks[0, 2, 2] = 1.0
    assert metrics.pointing_game(two_peaks, masks[:1]).tolist() == [0.0]  # one maximum outside
    with pytest.raises(ValueError, match="must both be"):
        metrics.pointing_game(cams, masks[:, :2])


def test_energy_pointing_game():
    masks = torch.zeros(2, 4, 4, dtype=torch.bool)
    masks[:, :2, :2] = True
    cams = torch.stack([torch.ones(4, 4), torch.zeros(4, 4)])
    assert torch.allclose(metrics.energy_pointing_game(cams, masks), torch.tensor([0.25, 0.0]))


class Tiny(nn.Module):
    def __init__(self, outputs):
        super().__init__()
        torch.manual_seed(outputs)
        self.net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                                 nn.Flatten(), nn.Linear(16, outputs))

    def forward(self, x):
        return self.net(x)


@pytest.mark.parametrize("outputs,target", [(1, None), (1, [0, 1]), (3, None), (3, 2)])
def test_insertion_deletion_equals_a_loop(outputs, target):
    model = Tiny(outputs).eval()
    g = torch.Generator().manual_seed(0)
    images, maps = torch.rand(2, 3, 8, 8, generator=g), torch.rand(2, 8, 8, generator=g)
    got = metrics.insertion_deletion(model, images, maps, steps=4, baseline=0.3, target=target,
                                     batch_size=3)
    with torch.no_grad():
        logits = model(images)
        for i in range(2):
            if outputs == 1:
                cls = int(logits[i, 0] > 0) if target is None else target[i]
                prob = lambda z: torch.sigmoid(z[0, 0] if cls else -z[0, 0])  # noqa: E731
            else:
                cls = int(logits[i].argmax()) if target is None else target
                prob = lambda z: z.softmax(1)[0, cls]  # noqa: E731
            order = torch.argsort(maps[i].flatten(), descending=True, stable=True)
            for k in range(5):
                top = torch.zeros(64, dtype=torch.bool)
                top[order[:(k * 64) // 4]] = True
                top = top.view(1, 8, 8)
                ref = torch.full_like(images[i], 0.3)
                assert torch.isclose(got["insertion"][i, k], prob(model(torch.where(top, images[i], ref)[None])), atol=1e-6)
                assert torch.isclose(got["deletion"][i, k], prob(model(torch.where(top, ref, images[i])[None])), atol=1e-6)
    # the last insertion step is the image itself, the first deletion step too
    assert torch.allclose(got["insertion"][:, -1], got["deletion"][:, 0])


def test_insertion_rewards_the_pixels_that_matter():
    """A model that only looks at the top-left quadrant: a map on that quadrant beats its inverse."""
    class Quadrant(nn.Module):
        def forward(self, x):
            return 8 * x[:, :, :4, :4].mean(dim=(1, 2, 3))[:, None] - 2

    images = torch.ones(2, 3, 8, 8)
    good = torch.zeros(2, 8, 8)
    good[:, :4, :4] = 1
    a = metrics.insertion_deletion(Quadrant(), images, good, steps=8, target=1)
    b = metrics.insertion_deletion(Quadrant(), images, 1 - good, steps=8, target=1)
    assert (a["insertion_auc"] > b["insertion_auc"] + 0.2).all()
    assert (a["deletion_auc"] < b["deletion_auc"] - 0.2).all()


def test_rank_correlation_is_spearman():
    from scipy.stats import spearmanr

    g = torch.Generator().manual_seed(1)
    a, b = torch.rand(3, 5, 5, generator=g), torch.rand(3, 5, 5, generator=g)
    b[1] = a[1] * 2 + 1  # monotone: correlation 1
    b[2] = (a[2] * 4).round()  # ties
    got = metrics.rank_correlation(a, b)
    want = [spearmanr(a[i].flatten(), b[i].flatten())[0] for i in range(3)]
    assert torch.allclose(got, torch.tensor(want, dtype=torch.float32), atol=1e-6)
    assert metrics.rank_correlation(a[:1], torch.ones(1, 5, 5)).item() == 0.0


def test_cascading_randomization_is_cumulative_and_leaves_the_model_alone():
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Conv2d(4, 4, 3), nn.Linear(4, 2))
    with torch.no_grad():
        model[1].running_mean.fill_(3.0)
    before = {k: v.clone() for k, v in model.state_dict().items()}
    seen = []
    for name, randomized in metrics.cascading_randomization(model, ["3", "2", "1"]):
        changed = {k.split(".")[0] for k, v in randomized.state_dict().items()
                   if v.dtype.is_floating_point and not torch.equal(v, before[k])}
        seen.append((name, changed))
    assert seen[0] == ("3", {"3"}) and seen[1] == ("2", {"3", "2"}) and seen[2][1] == {"3", "2", "1"}
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    with pytest.raises(ValueError, match="No layer 'head'"):
        next(metrics.cascading_randomization(model, ["head"]))


def test_explain_batched_runs_every_method_in_batches_and_times_it():
    from gradcam_course.metrics import explain_batched

    seen = []

    def brightness(x):
        seen.append(len(x))
        return x.mean(1)

    images = torch.rand(5, 3, 4, 6)
    maps, seconds = explain_batched({"brightness": brightness, "zeros": lambda x: x[:, 0] * 0},
                                    images, batch_size=2)
    assert seen == [2, 2, 1]
    torch.testing.assert_close(maps["brightness"], images.mean(1))
    assert maps["zeros"].shape == (5, 4, 6) and set(seconds) == {"brightness", "zeros"}
    assert all(s >= 0 for s in seconds.values())
