"""Torch code for phenokg: encoders, losses, attribute sampler, captions, knowledge-encoder training.

Modules: ``types`` (plain dataclasses the graph layer fills), ``sampler`` and ``captions`` (no torch at import
time, safe for ``kg``), ``losses``, ``encoders``, ``knowledge``. This package never imports ``app``; importing
``models`` itself imports nothing heavy.
"""
