"""Batched occlusion and insertion/deletion (chapter 4's references) against one forward pass per
perturbation, on the chapter's PatchCNN and 96×96 patches.

A measurement, not a test: it prints both times, the speed-up and the largest difference between
the two results, with a PASS/MISS note against the 10× target, and always exits 0.

    .venv/bin/python benchmarks/bench_perturbation.py [--images 8] [--threads N] [--device cpu|cuda]

Where the time goes decides the speed-up: on a GPU a batch-1 forward pass of this small CNN is
bound by kernel launches and Python, so one call for hundreds of perturbed patches wins by far;
on a CPU the same pass is bound by arithmetic, and batching saves only the per-call overhead.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import torch  # noqa: E402

from autograder.reference.ch04_pcam_histology import insertion_deletion, occlusion_sensitivity  # noqa: E402
from gradcam_course.metrics import score_signs  # noqa: E402
from gradcam_course.pcam import PatchCNN, synthetic_pcam  # noqa: E402

TARGET = 10.0


def occlusion_loop(model, images, patch, stride, baseline=0.0):
    """What the original notebook did: one forward pass per window (and per image)."""
    n, _, h, w = images.shape
    total = torch.zeros(n, h, w, device=images.device)
    count = torch.zeros(h, w, device=images.device)
    with torch.inference_mode():
        for i in range(n):
            x = images[i:i + 1]
            sign = score_signs(model(x))
            base = model(x)[0, 0] * sign
            for y in range(0, h - patch + 1, stride):
                for xx in range(0, w - patch + 1, stride):
                    occluded = x.clone()
                    occluded[:, :, y:y + patch, xx:xx + patch] = baseline
                    drop = base - model(occluded)[0, 0] * sign
                    total[i, y:y + patch, xx:xx + patch] += drop
                    if i == 0:
                        count[y:y + patch, xx:xx + patch] += 1
    return torch.where(count > 0, total / count.clamp_min(1), torch.zeros_like(total))


def insertion_deletion_loop(model, images, maps, steps, baseline=0.0):
    n, c, h, w = images.shape
    ins = torch.zeros(n, steps + 1, device=images.device)
    dels = torch.zeros(n, steps + 1, device=images.device)
    with torch.inference_mode():
        for i in range(n):
            x = images[i]
            sign = score_signs(model(x[None]))
            order = torch.argsort(maps[i].flatten(), descending=True, stable=True)
            for k in range(steps + 1):
                top = torch.zeros(h * w, dtype=torch.bool, device=x.device)
                top[order[:(k * h * w) // steps]] = True
                top = top.view(1, h, w)
                ref = torch.full_like(x, baseline)
                ins[i, k] = torch.sigmoid(model(torch.where(top, x, ref)[None])[0, 0] * sign)
                dels[i, k] = torch.sigmoid(model(torch.where(top, ref, x)[None])[0, 0] * sign)
    return ins, dels


def best_of(fn, repeats, device):
    times, out = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        out = fn()
        if device.type == "cuda":
            torch.cuda.synchronize()  # kernels run asynchronously: wait before reading the clock
        times.append(time.perf_counter() - start)
    return min(times), out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8)
    parser.add_argument("--patch", type=int, default=16)
    parser.add_argument("--stride", type=int, default=8)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = torch.device(args.device if args.device != "cuda" or torch.cuda.is_available() else "cpu")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = PatchCNN().eval().to(device)
    images = synthetic_pcam(args.images, seed=0).floats().to(device)
    maps = torch.rand(args.images, 96, 96, generator=torch.Generator().manual_seed(0)).to(device)
    windows = ((96 - args.patch) // args.stride + 1) ** 2
    where = torch.cuda.get_device_name(device) if device.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
    print(f"PatchCNN, {args.images} × 3 × 96 × 96 on {where}")
    best_of(lambda: occlusion_sensitivity(model, images[:1], 48, 48), 1, device)  # warm-up

    rows = []
    t_loop, slow = best_of(lambda: occlusion_loop(model, images, args.patch, args.stride), 1, device)
    t_batch, fast = best_of(lambda: occlusion_sensitivity(model, images, args.patch, args.stride),
                            args.repeats, device)
    rows.append((f"occlusion ({windows} windows of {args.patch} px, stride {args.stride})",
                 t_loop, t_batch, (slow - fast).abs().max().item()))
    t_loop, (ins, dels) = best_of(lambda: insertion_deletion_loop(model, images, maps, args.steps), 1, device)
    t_batch, out = best_of(lambda: insertion_deletion(model, images, maps, args.steps), args.repeats, device)
    diff = max((ins - out["insertion"]).abs().max().item(), (dels - out["deletion"]).abs().max().item())
    rows.append((f"insertion + deletion ({args.steps} steps)", t_loop, t_batch, diff))

    for name, t_loop, t_batch, diff in rows:
        speedup = t_loop / t_batch
        print(f"{name}\n  one forward per perturbation {t_loop:8.3f} s\n"
              f"  batched                      {t_batch:8.3f} s\n"
              f"  speed-up {speedup:6.1f}×  ({'PASS' if speedup >= TARGET else 'MISS'} against "
              f"{TARGET:g}×)   max |difference| {diff:.2e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
