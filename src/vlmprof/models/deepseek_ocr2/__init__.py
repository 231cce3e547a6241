"""DeepSeek-OCR-2 on transformers' native classes: dimensions, views, checkpoints, adapter.

Empty on purpose: `dims` and `views` import without transformers (the report reads them);
the adapter is loaded by the registry in `vlmprof.models` when a model is built.
"""
