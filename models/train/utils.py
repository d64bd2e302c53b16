"""What both trainers (knowledge encoder, image–text model) share."""

from __future__ import annotations

from torch import nn


def skips_weight_decay(name: str, param: nn.Parameter) -> bool:
    """The AdamW rule of both trainers: no weight decay for biases, norms, other vectors and the temperature."""
    lname = name.lower()
    return param.ndim < 2 or "norm" in lname or lname.endswith("bias") or "logit_scale" in lname
