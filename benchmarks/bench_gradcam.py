"""Time the course's reference Grad-CAM against pytorch-grad-cam and a plain forward pass.

A measurement script, not a test: it prints timings, ratios and PASS/MISS notes against the
targets below, and always exits 0 so that a noisy machine never fails a build.

    python benchmarks/bench_gradcam.py [--threads N] [--repeats R] [--lenet-batch B] [--device cpu|cuda]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

# The reference lives in the repository's autograder package, which is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from pytorch_grad_cam import GradCAM  # noqa: E402
from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget  # noqa: E402
from torchvision.models import resnet18  # noqa: E402

from autograder.reference.ch01_mnist_lenet import grad_cam  # noqa: E402
from gradcam_course.mnist import load_offline_digits  # noqa: E402
from gradcam_course.mnist import LeNet  # noqa: E402

# Targets for the reference: one backward to the target layer should cost little more than
# the forward pass itself, and clearly less than pytorch-grad-cam's full backward.
MAX_REF_OVER_FORWARD = 1.3
MIN_PGC_OVER_REF = 1.5
MAX_ABS_DIFF = 1e-4


def timed(fn, device: torch.device, repeats: int) -> tuple[float, object]:
    """Median wall time in ms over `repeats` calls after one warm-up, and the last result."""
    def sync():
        # CUDA kernels run asynchronously; without a barrier we would time the launch only.
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    result = fn()  # warm-up: first-call allocations, lazy init, cuDNN autotuning
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        result = fn()
        sync()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times), result


def trained_lenet(epochs: int = 25) -> tuple[LeNet, torch.Tensor]:
    """LeNet briefly trained on the offline digits, and those digits as inputs.

    An untrained LeNet has tiny raw maps (max ~4e-4), where the 1e-7 eps of the min-max,
    which pytorch-grad-cam applies twice and the reference once, shows at ~1e-4; a trained
    model, the case that matters, has maps of order 1.
    """
    torch.manual_seed(0)
    splits = load_offline_digits()
    x, y = splits.train.tensors
    model = LeNet()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        for i in range(0, len(x), 64):
            opt.zero_grad()
            torch.nn.functional.cross_entropy(model(x[i:i + 64]), y[i:i + 64]).backward()
            opt.step()
    model.zero_grad(set_to_none=True)
    return model.eval(), splits.test.tensors[0]


def run_case(name, model, layer_name, images, device, repeats) -> None:
    layer = model.get_submodule(layer_name)
    model = model.to(device).eval()
    images = images.to(device)
    with torch.no_grad():
        classes = model(images).argmax(dim=1)
    # Both implementations get the same explicit classes, so neither pays for its own argmax.
    class_list = classes.tolist()

    def forward():
        with torch.no_grad():
            return model(images)

    t_fwd, _ = timed(forward, device, repeats)
    t_ref, ref_map = timed(lambda: grad_cam(model, layer, images, classes), device, repeats)

    # pytorch-grad-cam keeps its hooks registered while the context is open; timing it last,
    # in its own block, keeps those hooks out of the forward and reference timings.
    targets = [ClassifierOutputTarget(int(c)) for c in class_list]
    with GradCAM(model=model, target_layers=[layer]) as cam:
        t_pgc, pgc_map = timed(lambda: cam(input_tensor=images, targets=targets), device, repeats)
    # Its loss.backward() fills every parameter's .grad; drop them so nothing leaks onward.
    model.zero_grad(set_to_none=True)

    max_diff = float(np.abs(ref_map.detach().cpu().numpy() - pgc_map).max())
    ref_over_fwd = t_ref / t_fwd
    pgc_over_ref = t_pgc / t_ref

    print(f"\n{name}: input {tuple(images.shape)}, layer model.{layer_name}")
    print(f"  {'forward (no_grad)':<24}{t_fwd:>10.2f} ms")
    print(f"  {'reference grad_cam':<24}{t_ref:>10.2f} ms")
    print(f"  {'pytorch-grad-cam':<24}{t_pgc:>10.2f} ms")
    print(f"  {'reference / forward':<24}{ref_over_fwd:>10.2f} x")
    print(f"  {'pytorch-grad-cam / ref':<24}{pgc_over_ref:>10.2f} x")
    print(f"  {'max |ref - pgc|':<24}{max_diff:>10.2e}")
    checks = [
        (f"reference <= {MAX_REF_OVER_FORWARD}x forward", ref_over_fwd <= MAX_REF_OVER_FORWARD),
        (f"pytorch-grad-cam >= {MIN_PGC_OVER_REF}x reference", pgc_over_ref >= MIN_PGC_OVER_REF),
        (f"max diff <= {MAX_ABS_DIFF:g}", max_diff <= MAX_ABS_DIFF),
    ]
    for label, ok in checks:
        print(f"  [{'PASS' if ok else 'MISS'}] {label}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs per method (median)")
    parser.add_argument("--lenet-batch", type=int, default=2048, help="LeNet batch size")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    args = parser.parse_args()

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        print("CUDA requested but not available; falling back to CPU.")
        device = torch.device("cpu")

    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, device {device}"
          + (f" ({torch.cuda.get_device_name(device)})" if device.type == "cuda" else ""))
    print(f"median of {args.repeats} runs after 1 warm-up")

    lenet, digits = trained_lenet()
    batch = digits[torch.arange(args.lenet_batch) % len(digits)]
    run_case("LeNet (trained on digits)", lenet, "conv2", batch, device, args.repeats)

    torch.manual_seed(0)
    resnet = resnet18(weights=None)
    run_case("ResNet-18", resnet, "layer4.1",  # == resnet.layer4[-1], its last block
             torch.randn(16, 3, 224, 224), device, args.repeats)
    return 0  # a measurement, never a failure


if __name__ == "__main__":
    sys.exit(main())
