"""The models library: what the server needs to load and run trained models (no ``app``, no trainer).

- encoders (``encoders/``), image loading and transforms (``images``), prompts (``prompts``), run files
  (``clip_files``), serving-time embedding (``serving``, ``embeddings``, ``onnx_text``), grounding and the
  domain check (``grounding``, ``domain``), captions, losses, the model registry's records and the plain data
  views the graph layer fills (``types``, ``views``);
- ``models.train`` is the trainer built on it (samplers, runs, evaluation, the Ray job entry point); the library
  never imports it (import-linter checks it). Importing ``models`` itself imports nothing heavy.
"""
