"""The seeded test models and inputs of the hidden checks, in one place (like captum's
``basic_models.py``). Each is small enough for a check to run in milliseconds and built to
make a chapter's mistakes visible (in-place ReLUs after the target layer, BatchNorm with
non-trivial running statistics, torchvision's own blocks).
"""

from __future__ import annotations

import torch
from torch import nn


# --- inputs ------------------------------------------------------------------------------------

def randn_images(n=4, h=11, w=14, seed=1, *, channels=2):
    """Standard-normal images (signed inputs), seeded."""
    return torch.randn(n, channels, h, w, generator=torch.Generator().manual_seed(seed))


def rand_images(n=3, h=14, w=18, seed=1, *, channels=3):
    """Images in [0, 1), like photos and histology patches, seeded."""
    return torch.rand(n, channels, h, w, generator=torch.Generator().manual_seed(seed))


def photos(n=3, h=64, w=96, seed=1):
    return torch.randn(n, 3, h, w, generator=torch.Generator().manual_seed(seed))


# --- chapter 1: any-size CNN, optionally an in-place ReLU after the target ------------------------

class SmallConvNet(nn.Module):
    """A seeded CNN for the checks: works on any input size, ``target`` is the layer to hook.

    With ``inplace=True`` the target conv is followed by ``ReLU(inplace=True)``, like the
    convolutions in torchvision's VGG and ResNet.
    """

    def __init__(self, inplace: bool = False, num_classes: int = 5, seed: int = 0,
                 fail_after_target: bool = False):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.conv1 = nn.Conv2d(2, 6, 3, padding=1)
        self.act1 = nn.ReLU()
        self.target = nn.Conv2d(6, 7, 3, padding=1)
        self.act2 = nn.ReLU(inplace=inplace)
        self.pool = nn.AdaptiveAvgPool2d((2, 3))
        self.fc = nn.Linear(7 * 6, num_classes)
        self.fail_after_target = fail_after_target
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)

    def forward(self, x):
        x = self.act2(self.target(self.act1(self.conv1(x))))
        if self.fail_after_target:
            raise RuntimeError("forward failed on purpose (hidden test)")
        return self.fc(self.pool(x).flatten(1))


# --- chapter 2: VGG16's layout with few channels ---------------------------------------------------

# VGG16's layout (13 convs, 5 max-pools: features[29] is relu5_3, features[30] the last pool)
# with few channels, so the checks run in milliseconds.
SMALL_CFG = [4, 4, "M", 6, 6, "M", 8, 8, 8, "M", 8, 8, 8, "M", 12, 12, 12, "M"]


class SmallVGG(nn.Module):
    def __init__(self, num_classes: int = 6, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        layers, c = [], 3
        for v in SMALL_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c, v, 3, padding=1), nn.ReLU(inplace=True)]
                c = v
        self.features = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d((7, 7))
        self.classifier = nn.Sequential(nn.Linear(12 * 7 * 7, 32), nn.ReLU(inplace=True),
                                        nn.Dropout(), nn.Linear(32, num_classes))
        assert isinstance(self.features[29], nn.ReLU) and isinstance(self.features[30], nn.MaxPool2d)
        for m in self.modules():  # torchvision's VGG init keeps the signal alive through 13 convs
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                nn.init.normal_(m.bias, 0.0, 0.1)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.1)
                nn.init.normal_(m.bias, 0.0, 0.1)

    def forward(self, x):
        x = self.avgpool(self.features(x))
        return self.classifier(torch.flatten(x, 1))


# --- chapter 3: a ResNet of torchvision's BasicBlocks ------------------------------------------------

class SmallResNet(nn.Module):
    """A seeded ResNet built from torchvision's own BasicBlock (``out += identity`` and
    ``ReLU(inplace=True)`` inside), small enough for the checks, any input size."""

    def __init__(self, in_channels: int = 2, num_classes: int = 3, seed: int = 0):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, 8, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu = nn.ReLU(inplace=True)
        from torchvision.models.resnet import BasicBlock  # here: importing torchvision costs seconds

        self.layer1 = nn.Sequential(BasicBlock(8, 8), BasicBlock(8, 8))
        down = nn.Sequential(nn.Conv2d(8, 16, 1, stride=2, bias=False), nn.BatchNorm2d(16))
        self.layer2 = nn.Sequential(BasicBlock(8, 16, stride=2, downsample=down), BasicBlock(16, 16))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, num_classes)
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.4 + (0.6 if p.dim() == 1 else 0.0))
        self.eval()

    def forward(self, x):
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.layer1(x))
        return self.fc(self.avgpool(x).flatten(1))


# --- chapter 4: one logit (binary), BatchNorm, in-place ReLUs ---------------------------------------

class OneLogitCNN(nn.Module):
    """Two conv blocks (BatchNorm, in-place ReLU after the target conv), one logit, seeded."""

    def __init__(self, seed: int = 0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 1))
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (0.3 if p.dim() == 1 else 0.0))
            self.features[1].running_mean.uniform_(-0.2, 0.2, generator=g)
            self.features[1].running_var.uniform_(0.5, 1.5, generator=g)
        self.eval()

    def forward(self, x):
        return self.head(self.features(x))


# --- chapter 5: four classes, signed BatchNorm activations ------------------------------------------

class FourClassCNN(nn.Module):
    """Four classes, BatchNorm with non-trivial running statistics, seeded, in eval mode.

    ``features[4]`` is a conv followed by an in-place ReLU (its gradient is exactly zero wherever
    its output is negative); ``features[7]`` is a BatchNorm output that feeds a 1×1 conv (signed
    activations with non-zero gradients, varying over the grid).
    """

    def __init__(self, seed: int = 0, classes: int = 4):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, 6, 3, padding=1), nn.BatchNorm2d(6), nn.ReLU(inplace=True), nn.MaxPool2d(2),
            nn.Conv2d(6, 8, 3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(8, 8, 3, padding=1), nn.BatchNorm2d(8),
            nn.Conv2d(8, 6, 1), nn.ReLU(inplace=True))
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, classes))
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5 + (0.3 if p.dim() == 1 else 0.0))
            for bn in (self.features[1], self.features[7]):
                bn.running_mean.uniform_(-0.2, 0.2, generator=g)
                bn.running_var.uniform_(0.5, 1.5, generator=g)
        self.eval()

    def forward(self, x):
        return self.head(self.features(x))
