"""Student answers for chapter 5, right and wrong, keyed by the solution cell they replace.

Each variant is the notebook's own solution with one targeted edit: the usual mistakes (a missing
ReLU or one in the wrong place, Grad-CAM's averaged gradient, 0/0 in Grad-CAM++, Score-CAM's
softmax over the wrong axis, unnormalised masks, the other upsampling convention, one forward pass
per channel or with gradients, EigenCAM without centring or with the SVD's sign left to chance)
and correct alternatives (nan_to_num, clamp, einsum, all (image, channel) pairs in one flat loop,
the eigenvectors of the K × K covariance).
"""

from functools import partial

from course_files import solution_edit

edit = partial(solution_edit, "05_cam_family")

EXERCISES = {
    "plusplus": {"test_plusplus_values", "test_plusplus_zero_gradients"},
    "hirescam": {"test_hirescam"},
    "layercam": {"test_layercam"},
    "scorecam": {"test_scorecam_values", "test_scorecam_batches"},
    "eigencam": {"test_eigencam_values", "test_eigencam_sign"},
}

PLUSPLUS_RETURN = "return (alpha * torch.relu(gradients)).sum(dim=(2, 3))"
PLUSPLUS_GUARD = "    alpha = torch.where(gradients != 0, alpha, torch.zeros_like(alpha))\n"
HIRESCAM = "return torch.relu((gradients * activations).sum(dim=1))"
LAYERCAM = "return torch.relu((torch.relu(gradients) * activations).sum(dim=1))"
SCORECAM_LOGIT = "scores[i, start:start + batch_size] = model(masked)[:, idx[i]]"
EIGEN_SVD = ("    _, _, vh = torch.linalg.svd(x, full_matrices=False)\n"
             "    proj = (x @ vh[:, 0, :, None])[..., 0]")

WRONG = {
    # Grad-CAM++ with negative gradients too
    "plusplus_no_relu": (edit("plusplus_solution", (PLUSPLUS_RETURN, "return (alpha * gradients).sum(dim=(2, 3))")),
                         "plusplus", "test_plusplus_values"),
    "plusplus_mean": (edit("plusplus_solution", (PLUSPLUS_RETURN, "return (alpha * torch.relu(gradients)).mean(dim=(2, 3))")),
                      "plusplus", "test_plusplus_values"),
    # Σ_ab A_ab left out of the denominator
    "plusplus_no_activation_sum": (edit("plusplus_solution", ("2 * g2 + total * g3 + 1e-6", "2 * g2 + g3 + 1e-6")),
                                   "plusplus", "test_plusplus_values"),
    # 0 / 0 = NaN wherever the gradient is zero
    "plusplus_nan": (edit("plusplus_solution", ("total * g3 + 1e-6)", "total * g3)"), (PLUSPLUS_GUARD, "")),
                     "plusplus", "test_plusplus_zero_gradients"),
    "hirescam_no_relu": (edit("hirescam_solution", (HIRESCAM, "return (gradients * activations).sum(dim=1)")),
                         "hirescam", "test_hirescam"),
    # pytorch-grad-cam's GradCAMElementWise, not HiResCAM
    "hirescam_relu_inside": (edit("hirescam_solution", (HIRESCAM, "return torch.relu(gradients * activations).sum(dim=1)")),
                             "hirescam", "test_hirescam"),
    # that is Grad-CAM
    "hirescam_averaged_gradients": (edit("hirescam_solution", (HIRESCAM, "return torch.relu((gradients.mean(dim=(2, 3), keepdim=True) * activations).sum(dim=1))")),
                                    "hirescam", "test_hirescam"),
    # that is HiResCAM
    "layercam_no_gradient_relu": (edit("layercam_solution", (LAYERCAM, "return torch.relu((gradients * activations).sum(dim=1))")),
                                  "layercam", "test_layercam"),
    "layercam_no_outer_relu": (edit("layercam_solution", (LAYERCAM, "return (torch.relu(gradients) * activations).sum(dim=1)")),
                               "layercam", "test_layercam"),
    "scorecam_softmax_over_images": (edit("scorecam_solution", ("torch.softmax(scores, dim=1)", "torch.softmax(scores, dim=0)")),
                                     "scorecam", "test_scorecam_values"),
    "scorecam_masks_not_normalised": (edit("scorecam_solution", ("masks = (up - lo) / (hi - lo + 1e-8)", "masks = up")),
                                      "scorecam", "test_scorecam_values"),
    "scorecam_align_corners_false": (edit("scorecam_solution", ("align_corners=True", "align_corners=False")),
                                     "scorecam", "test_scorecam_values"),
    # the top logit of each masked image, not the target class
    "scorecam_masked_prediction": (edit("scorecam_solution", (SCORECAM_LOGIT, "scores[i, start:start + batch_size] = model(masked).amax(1)")),
                                   "scorecam", "test_scorecam_values"),
    # the first image's class for every image
    "scorecam_first_class_for_all": (edit("scorecam_solution", (SCORECAM_LOGIT, "scores[i, start:start + batch_size] = model(masked)[:, idx[0]]")),
                                     "scorecam", "test_scorecam_values"),
    # right numbers, K forward passes per image
    "scorecam_one_forward_per_channel": (edit("scorecam_solution", ("    n, k = activations.shape[:2]\n",
                                                                     "    n, k = activations.shape[:2]\n    batch_size = 1\n")),
                                         "scorecam", "test_scorecam_batches"),
    # right numbers, every forward pass builds a graph
    "scorecam_with_gradients": (edit("scorecam_solution", ("with torch.inference_mode():", "with torch.enable_grad():")),
                                "scorecam", "test_scorecam_batches"),
    # right up to the sign, which an SVD leaves to chance
    "eigencam_sign_left_to_chance": (edit("eigencam_solution", ("return (proj * sign[:, None]).reshape(n, h, w)", "return proj.reshape(n, h, w)")),
                                     "eigencam", "test_eigencam_sign"),
    "eigencam_not_centred": (edit("eigencam_solution", ("    x = x - x.mean(dim=1, keepdim=True)                   # centre every channel\n", "")),
                             "eigencam", "test_eigencam_values"),
    # every position centred over its channels instead of every channel over the positions
    "eigencam_centred_over_channels": (edit("eigencam_solution", ("x = x - x.mean(dim=1, keepdim=True)", "x = x - x.mean(dim=2, keepdim=True)")),
                                       "eigencam", "test_eigencam_values"),
}

CORRECT = {
    # NaN-free by nan_to_num instead of the torch.where guard
    "plusplus_nan_to_num": edit("plusplus_solution", (PLUSPLUS_GUARD, "    alpha = torch.nan_to_num(alpha)\n")),
    # clamp for the ReLU, an explicit power, einsum for the sum over the positions
    "plusplus_clamp_einsum": edit(
        "plusplus_solution",
        ("g3 = g2 * gradients", "g3 = gradients.pow(3)"),
        (PLUSPLUS_RETURN, "return torch.einsum(\"nkhw,nkhw->nk\", alpha, gradients.clamp(min=0))"),
    ),
    "hirescam_einsum": edit("hirescam_solution", (HIRESCAM, "return torch.einsum(\"nkhw,nkhw->nhw\", gradients, activations).clamp(min=0)")),
    "layercam_clamp": edit("layercam_solution", (LAYERCAM, "return (gradients.clamp(min=0) * activations).sum(dim=1).clamp(min=0)")),
    # all (image, channel) pairs in one flat loop of batches, under no_grad
    "scorecam_flat_pairs_no_grad": edit(
        "scorecam_solution",
        ("""    with torch.inference_mode():
        if class_idx is None:
            class_idx = model(images).argmax(1)
        idx = torch.as_tensor(class_idx, device=images.device).reshape(-1).expand(n)
        scores = torch.empty(n, k, device=images.device)
        for i in range(n):
            up = F.interpolate(activations[i:i + 1], size=images.shape[-2:], mode="bilinear",
                               align_corners=True)[0]                       # (K, H, W)
            lo = up.flatten(1).min(1).values[:, None, None]
            hi = up.flatten(1).max(1).values[:, None, None]
            masks = (up - lo) / (hi - lo + 1e-8)
            for start in range(0, k, batch_size):
                masked = images[i] * masks[start:start + batch_size, None]  # (B, C, H, W)
                scores[i, start:start + batch_size] = model(masked)[:, idx[i]]
        return torch.softmax(scores, dim=1)""",
         """    with torch.no_grad():
        if class_idx is None:
            class_idx = model(images).argmax(1)
        idx = torch.as_tensor(class_idx, device=images.device).reshape(-1).expand(n)
        up = F.interpolate(activations, size=images.shape[-2:], mode="bilinear", align_corners=True)
        lo = up.flatten(2).amin(2)[:, :, None, None]
        hi = up.flatten(2).amax(2)[:, :, None, None]
        masks = ((up - lo) / (hi - lo + 1e-8)).flatten(0, 1)               # (N*K, H, W)
        owner = torch.arange(n, device=images.device).repeat_interleave(k)
        scores = []
        for start in range(0, n * k, batch_size):
            img = owner[start:start + batch_size]
            out = model(images[img] * masks[start:start + batch_size, None])
            scores.append(out.gather(1, idx[img][:, None])[:, 0])
        return torch.softmax(torch.cat(scores).reshape(n, k), dim=1)"""),
    ),
    # the largest eigenvector of the K × K covariance instead of the SVD
    "eigencam_eigh": edit(
        "eigencam_solution",
        (EIGEN_SVD, "    _, vectors = torch.linalg.eigh(x.transpose(1, 2) @ x)\n"
                    "    proj = (x @ vectors[:, :, -1:])[..., 0]"),
    ),
}

FAULTS = {
    # a crash when the function is called: only its own exercise loses points
    "hirescam_crashes": (edit("hirescam_solution", (HIRESCAM, "return torch.relu((gradients * activations).sum(dim=4))")),
                         "hirescam"),
}
