"""Student answers for chapter 2, right and wrong, keyed by the solution cell they replace."""

from functools import partial

from course_files import solution_edit

edit = partial(solution_edit, "02_vgg16_imagenet")

OVERLAY_ADDWEIGHTED = '''
def overlay_heatmap(image, cam, alpha=0.4, colormap=cv2.COLORMAP_JET):
    if isinstance(cam, torch.Tensor):
        cam = cam.detach().cpu().numpy()
    h, w = image.shape[:2]
    cam = cv2.resize(cam.astype(np.float32), (w, h))
    heatmap = cv2.cvtColor(cv2.applyColorMap(np.uint8(255 * np.clip(cam, 0, 1)), colormap),
                           cv2.COLOR_BGR2RGB)
    return cv2.addWeighted(heatmap, alpha, image, 1 - alpha, 0)
'''

GUIDED_NO_CLAMP = '''
def guided_backprop(model, images, class_idx=None):
    x = images.detach().clone().requires_grad_(True)    # wrong: plain gradient, nothing clamped
    logits = model(x)
    idx = logits.argmax(1) if class_idx is None else torch.as_tensor(class_idx).reshape(-1)
    (grad,) = torch.autograd.grad(logits.gather(1, idx[:, None]).sum(), x)
    return grad
'''

GUIDED_HOOKS_LEFT = '''
def guided_backprop(model, images, class_idx=None):
    for m in model.modules():
        if isinstance(m, nn.ReLU):
            m.inplace = False
            m.register_full_backward_hook(lambda mod, gin, gout: (gin[0].clamp(min=0),))
    x = images.detach().clone().requires_grad_(True)
    logits = model(x)
    idx = logits.argmax(1) if class_idx is None else torch.as_tensor(class_idx).reshape(-1)
    (grad,) = torch.autograd.grad(logits.gather(1, idx[:, None]).sum(), x)
    return grad                                        # wrong: hooks stay, inplace not restored
'''

# Correct: full backward hooks on the ReLUs, with in-place switched off during the call and
# restored afterwards (a backward hook cannot sit on a module that modifies its input in place).
GUIDED_FULL_BACKWARD_HOOKS = '''
def guided_backprop(model, images, class_idx=None):
    relus = [m for m in model.modules() if isinstance(m, (nn.ReLU, nn.ReLU6))]
    flags = [m.inplace for m in relus]
    handles = []
    try:
        for m in relus:
            m.inplace = False
            handles.append(m.register_full_backward_hook(
                lambda module, grad_input, grad_output: (grad_input[0].clamp(min=0),)))
        x = images.detach().clone().requires_grad_(True)
        logits = model(x)
        if class_idx is None:
            idx = logits.argmax(1)
        else:
            idx = torch.as_tensor(class_idx).long().reshape(-1).expand(len(x))
        (grad,) = torch.autograd.grad(logits[torch.arange(len(x)), idx].sum(), x)
    finally:
        for h in handles:
            h.remove()
        for m, flag in zip(relus, flags):
            m.inplace = flag
    return grad
'''

EXERCISES = {
    "vgg": {"test_vgg_logits", "test_vgg_gradients"},
    "overlay": {"test_overlay"},
    "counterfactual": {"test_counterfactual"},
    "guided": {"test_guided_backprop", "test_guided_gradcam"},
}

WRONG = {
    # works for one image only
    "batch1_flatten": (edit("vgg_solution", ("torch.flatten(x, 1)", "x.view((1, -1))")),
                       "vgg", "test_vgg_logits"),
    # OpenCV's BGR heatmap blended into an RGB photo
    "overlay_bgr": (edit("overlay_solution", ("    heatmap = cv2.cvtColor(heatmap, cv2.COLOR_BGR2RGB)\n", "")),
                    "overlay", "test_overlay"),
    # fails on a tensor map, as the chapter's figure cells pass it (a NumPy-only answer)
    "overlay_numpy_only": (edit("overlay_solution",
                                ("    if isinstance(cam, torch.Tensor):\n        cam = cam.detach().cpu().numpy()\n", ""),
                                ("np.asarray(cam, dtype=np.float32)", "cam.astype(np.float32)")),
                           "overlay", "test_overlay"),
    "guided_no_clamp": ({"guided_solution": GUIDED_NO_CLAMP}, "guided", "test_guided_backprop"),
    # only nn.ReLU guided: EfficientNet-Lite0's ReLU6 layers pass negative gradients back
    "guided_relu_only": (edit("guided_solution", ("(nn.ReLU, nn.ReLU6)", "nn.ReLU")),
                         "guided", "test_guided_backprop"),
    # class_idx=None read as class 0 instead of each image's argmax
    "guided_none_is_class_0": (edit("guided_solution",
                                    ("idx = logits.argmax(1)", "idx = torch.zeros(len(x), dtype=torch.long)")),
                               "guided", "test_guided_backprop"),
    "guided_hooks_left": ({"guided_solution": GUIDED_HOOKS_LEFT}, "guided", "test_guided_backprop"),
}

CORRECT = {
    "overlay_addweighted": {"overlay_solution": OVERLAY_ADDWEIGHTED},
    "guided_full_backward_hooks": {"guided_solution": GUIDED_FULL_BACKWARD_HOOKS},
}
