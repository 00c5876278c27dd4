"""Student answers for chapter 1, right and wrong, keyed by the solution cell they replace.

Each wrong answer is a mistake seen in real Grad-CAM code; each must lose points in the
exercise it breaks and only there. Each alternative is correct and must keep full points.
"""

CAPTURE_SOFTMAX_SCORE = '''
def capture_activations_and_gradients(model, layer, images, class_idx=None):
    captured = {}
    def hook(module, inputs, output):
        captured["output"] = output
        return output.clone()
    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad():
            logits = model(images)
            n = logits.shape[0]
            if class_idx is None:
                idx = logits.argmax(dim=1)
            elif isinstance(class_idx, int):
                idx = torch.full((n,), class_idx, dtype=torch.long)
            else:
                idx = torch.as_tensor(class_idx, dtype=torch.long).reshape(-1)
                if idx.numel() != n:
                    raise ValueError("one class per image")
            probs = logits.softmax(dim=1)          # wrong: the score must be the raw logit
            score = probs.gather(1, idx[:, None]).sum()
            (gradients,) = torch.autograd.grad(score, captured["output"])
    finally:
        handle.remove()
    return captured["output"].detach(), gradients.detach(), logits.detach()
'''

CAPTURE_HOOK_LEFT = '''
def capture_activations_and_gradients(model, layer, images, class_idx=None):
    captured = {}
    def hook(module, inputs, output):
        captured["output"] = output
        return output.clone()
    layer.register_forward_hook(hook)              # wrong: the handle is never removed
    with torch.enable_grad():
        logits = model(images)
        n = logits.shape[0]
        if class_idx is None:
            idx = logits.argmax(dim=1)
        elif isinstance(class_idx, int):
            idx = torch.full((n,), class_idx, dtype=torch.long)
        else:
            idx = torch.as_tensor(class_idx, dtype=torch.long).reshape(-1)
            if idx.numel() != n:
                raise ValueError("one class per image")
        score = logits.gather(1, idx[:, None]).sum()
        (gradients,) = torch.autograd.grad(score, captured["output"])
    return captured["output"].detach(), gradients.detach(), logits.detach()
'''

# Correct: a tensor hook on the layer's output inside a forward hook, a plain backward(), and
# the parameters' gradients put back as they were.
CAPTURE_TENSOR_HOOK = '''
def capture_activations_and_gradients(model, layer, images, class_idx=None):
    store = {}
    def forward_hook(module, inputs, output):
        store["activations"] = output.detach().clone()
        output.register_hook(lambda grad: store.__setitem__("gradients", grad.detach().clone()))
    handle = layer.register_forward_hook(forward_hook)
    saved = [None if p.grad is None else p.grad.clone() for p in model.parameters()]
    try:
        with torch.enable_grad():
            logits = model(images)
            n = len(logits)
            if class_idx is None:
                targets = logits.argmax(1).tolist()
            elif isinstance(class_idx, int):
                targets = [class_idx] * n
            else:
                targets = [int(c) for c in class_idx]
                if len(targets) != n:
                    raise ValueError("class_idx must have one entry per image")
            score = sum(logits[i, c] for i, c in enumerate(targets))
            score.backward()
    finally:
        handle.remove()
        for p, g in zip(model.parameters(), saved):
            p.grad = g
    return store["activations"], store["gradients"], logits.detach()
'''

# Correct: a full backward hook. On the layer itself it would break when an in-place op
# follows (PyTorch forbids modifying a backward-hook output in place), so the hook sits on a
# probe module applied to the layer's output, and the probe's output is cloned.
CAPTURE_FULL_BACKWARD_HOOK = '''
class _Probe(nn.Module):
    def forward(self, x):
        return x.clone()

def capture_activations_and_gradients(model, layer, images, class_idx=None):
    store = {}
    probe = _Probe()
    def save_grad(module, grad_input, grad_output):
        store["gradients"] = grad_output[0].detach().clone()
    def forward_hook(module, inputs, output):
        store["activations"] = output.detach().clone()
        return probe(output).clone()
    probe_handle = probe.register_full_backward_hook(save_grad)
    handle = layer.register_forward_hook(forward_hook)
    try:
        with torch.enable_grad():
            images = images.clone().requires_grad_(True)
            logits = model(images)
            n = logits.shape[0]
            if class_idx is None:
                idx = logits.argmax(1)
            else:
                idx = torch.as_tensor(class_idx).long().reshape(-1).expand(n) if isinstance(class_idx, int) \\
                    else torch.as_tensor(class_idx).long().reshape(-1)
                if idx.numel() != n:
                    raise ValueError("class_idx must have one entry per image")
            score = logits[torch.arange(n), idx].sum()
            torch.autograd.grad(score, images)    # runs the backward hook, no weight .grad
    finally:
        handle.remove()
        probe_handle.remove()
    return store["activations"], store["gradients"], logits.detach()
'''

WEIGHTS_BATCH_MEAN = '''
def gradcam_weights(gradients):
    # wrong: averaged over the batch as well, so every image gets the same weights
    return gradients.mean(dim=(0, 2, 3)).expand(gradients.shape[0], -1)
'''

MAP_NO_RELU = '''
def gradcam_map(activations, weights):
    return (weights[:, :, None, None] * activations).sum(dim=1)   # wrong: no ReLU
'''

MAP_EINSUM = '''
def gradcam_map(activations, weights):
    return torch.einsum("nk,nkhw->nhw", weights, activations).clamp(min=0)
'''

_NORMALIZE = '''
    lo = up.flatten(1).min(dim=1).values[:, None, None]
    hi = up.flatten(1).max(dim=1).values[:, None, None]
    return (up - lo) / (hi - lo + 1e-7)
'''

UPSAMPLE_ALIGN_CORNERS = '''
def upsample_and_normalize(cam, size):
    up = F.interpolate(cam[:, None], size=tuple(size), mode="bilinear", align_corners=True)[:, 0]
''' + _NORMALIZE

UPSAMPLE_NEAREST = '''
def upsample_and_normalize(cam, size):
    up = F.interpolate(cam[:, None], size=tuple(size), mode="nearest")[:, 0]
''' + _NORMALIZE

UPSAMPLE_NORMALIZE_FIRST = '''
def upsample_and_normalize(cam, size):
    lo = cam.flatten(1).min(dim=1).values[:, None, None]
    hi = cam.flatten(1).max(dim=1).values[:, None, None]
    cam = (cam - lo) / (hi - lo + 1e-7)            # wrong: normalised before upsampling only
    return F.interpolate(cam[:, None], size=tuple(size), mode="bilinear", align_corners=False)[:, 0]
'''

WEIGHTS_INFINITE_LOOP = '''
def gradcam_weights(gradients):
    while True:
        pass
'''

CAPTURE_IMPORT_ERROR = '''
import a_module_that_does_not_exist

def capture_activations_and_gradients(model, layer, images, class_idx=None):
    raise NotImplementedError
'''

# The graded test cells of each exercise.
EXERCISES = {
    "capture": {"test_capture_values", "test_capture_class_idx", "test_capture_inplace",
                "test_capture_hygiene"},
    "weights": {"test_weights"},
    "map": {"test_map"},
    "upsample": {"test_upsample_values", "test_upsample_edge_cases"},
}

# name: (solution cells replaced, the exercise that must lose points, a test cell that must
# fail). Test cells of other exercises must keep their points.
WRONG = {
    "softmax_score": ({"capture_solution": CAPTURE_SOFTMAX_SCORE}, "capture", "test_capture_values"),
    "hook_left_registered": ({"capture_solution": CAPTURE_HOOK_LEFT}, "capture",
                             "test_capture_hygiene"),
    "weights_batch_mean": ({"weights_solution": WEIGHTS_BATCH_MEAN}, "weights", "test_weights"),
    "no_relu": ({"map_solution": MAP_NO_RELU}, "map", "test_map"),
    "align_corners_true": ({"upsample_solution": UPSAMPLE_ALIGN_CORNERS}, "upsample",
                           "test_upsample_values"),
    "nearest": ({"upsample_solution": UPSAMPLE_NEAREST}, "upsample", "test_upsample_values"),
    "normalize_before_upsample": ({"upsample_solution": UPSAMPLE_NORMALIZE_FIRST}, "upsample",
                                  "test_upsample_values"),
}

CORRECT = {
    "tensor_hook": {"capture_solution": CAPTURE_TENSOR_HOOK},
    "full_backward_hook": {"capture_solution": CAPTURE_FULL_BACKWARD_HOOK},
    "einsum": {"map_solution": MAP_EINSUM},
}

# name: (solution cells replaced, the exercise whose points are lost entirely)
FAULTS = {
    "import_error": ({"capture_solution": CAPTURE_IMPORT_ERROR}, "capture"),
    "infinite_loop": ({"weights_solution": WEIGHTS_INFINITE_LOOP}, "weights"),
}

