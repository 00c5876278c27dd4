"""Plain data across the trust boundary: what a probe saw, as JSON, and back.

Only numbers, strings, booleans, None, lists, tuples, dicts and arrays cross (a tensor or a
NumPy array as dtype + shape + bytes, of a dtype from :data:`DTYPES`); anything else is sent as
its type's name only. :func:`decode` never unpickles, never imports and never calls what it
reads, so a hostile kernel can send wrong data but cannot run code in the grader. A tensor comes
back as a real ``torch.Tensor`` (with its ``requires_grad``), an array as an array, another
object as :class:`Other`, so a check's "must be a torch.Tensor" still tells them apart.
"""

from __future__ import annotations

import base64
import json
import math

import numpy as np

DTYPES = ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8", "bool")
MAX_BYTES = 64 * 1024 * 1024  # a probe's whole result; the checks' inputs are small
MAX_DEPTH = 20


class Other:
    """What a probe saw that is not plain data: its type's name only."""

    def __init__(self, type_name: str):
        self.type_name = str(type_name)

    def __repr__(self):
        return f"<{self.type_name}>"


class MalformedResult(Exception):
    """A probe's result that is not what :func:`encode` writes."""


def _array(kind: str, array: np.ndarray, **extra) -> dict:
    array = np.asarray(array)  # tobytes() is C order whatever the strides
    if array.dtype.name not in DTYPES:
        array = array.astype(np.float64 if array.dtype.kind in "fc" else np.int64)
    return {"__array__": kind, "dtype": array.dtype.name, "shape": list(array.shape),
            "data": base64.b64encode(array.tobytes()).decode("ascii"), **extra}


def encode(value, depth: int = 0):
    """``value`` as JSON-ready data (called where the student's code runs)."""
    import torch

    if depth > MAX_DEPTH:
        return {"__other__": "too deeply nested"}
    if value is None or type(value) in (bool, int, str):
        return value
    if type(value) is float:
        return value if math.isfinite(value) else {"__float__": repr(value)}
    if type(value) is torch.Tensor:
        tensor = value.detach().cpu()
        if tensor.dtype == torch.bfloat16:
            tensor = tensor.float()
        if tensor.is_complex():
            return {"__other__": f"complex tensor {tensor.dtype}"}
        return _array("tensor", tensor.resolve_conj().resolve_neg().numpy(),
                      requires_grad=bool(value.requires_grad))
    if type(value) is np.ndarray:
        if value.dtype.kind not in "biuf":
            return {"__other__": f"ndarray of {value.dtype}"}
        return _array("ndarray", value)
    if isinstance(value, np.generic) and type(value).__module__ == "numpy" and value.dtype.kind in "biuf":
        return _array("scalar", np.asarray(value))
    # Subclasses (a namedtuple) are read through the base class, as they were returned.
    if isinstance(value, tuple):
        return {"__tuple__": [encode(v, depth + 1) for v in tuple.__iter__(value)]}
    if isinstance(value, list):
        return [encode(v, depth + 1) for v in list.__iter__(value)]
    if isinstance(value, dict):
        return {"__dict__": [[encode(k, depth + 1), encode(v, depth + 1)] for k, v in dict.items(value)]}
    return {"__other__": f"{type(value).__module__}.{type(value).__qualname__}"}


def dumps(value) -> str:
    return json.dumps(encode(value))


def _decode_array(obj: dict):
    import torch

    kind, dtype, shape, data = obj.get("__array__"), obj.get("dtype"), obj.get("shape"), obj.get("data")
    if kind not in ("tensor", "ndarray", "scalar") or dtype not in DTYPES or not isinstance(data, str):
        raise MalformedResult("an array with an unknown kind or dtype")
    if not isinstance(shape, list) or not all(type(s) is int and s >= 0 for s in shape) or len(shape) > 8:
        raise MalformedResult("an array with a malformed shape")
    raw = base64.b64decode(data.encode("ascii"), validate=True)
    array = np.frombuffer(raw, dtype=np.dtype(dtype))
    if array.size != math.prod(shape):
        raise MalformedResult("an array whose data does not match its shape")
    array = array.reshape(shape).copy()
    if kind == "scalar":
        return array[()]
    if kind == "ndarray":
        return array
    tensor = torch.from_numpy(array)
    if obj.get("requires_grad") is True and tensor.is_floating_point():
        tensor.requires_grad_(True)
    return tensor


def decode(obj, depth: int = 0):
    """The inverse of :func:`encode` (called in the grader, on untrusted data)."""
    if depth > MAX_DEPTH + 1:
        raise MalformedResult("nested too deeply")
    if obj is None or type(obj) in (bool, int, float, str):
        return obj
    if type(obj) is list:
        return [decode(v, depth + 1) for v in obj]
    if type(obj) is not dict or len(obj) == 0:
        raise MalformedResult(f"unexpected {type(obj).__name__}")
    if "__array__" in obj:
        return _decode_array(obj)
    if set(obj) == {"__tuple__"} and type(obj["__tuple__"]) is list:
        return tuple(decode(v, depth + 1) for v in obj["__tuple__"])
    if set(obj) == {"__dict__"} and type(obj["__dict__"]) is list:
        out = {}
        for pair in obj["__dict__"]:
            if type(pair) is not list or len(pair) != 2:
                raise MalformedResult("a malformed dict item")
            key = decode(pair[0], depth + 1)
            if type(key) not in (str, int, bool, float, tuple) and key is not None:
                raise MalformedResult("an unhashable dict key")
            out[key] = decode(pair[1], depth + 1)
        return out
    if set(obj) == {"__float__"} and obj["__float__"] in ("nan", "inf", "-inf"):
        return float(obj["__float__"])
    if set(obj) == {"__other__"}:
        return Other(str(obj["__other__"])[:200])
    raise MalformedResult("an object that is not plain data")


def loads(text: str | bytes):
    if len(text) > MAX_BYTES:
        raise MalformedResult(f"larger than {MAX_BYTES // 2**20} MB")
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as err:
        raise MalformedResult(f"not JSON ({type(err).__name__})") from None
    try:
        return decode(obj)
    except (ValueError, TypeError, RecursionError, OverflowError) as err:
        raise MalformedResult(f"{type(err).__name__}: {err}"[:300]) from None
