"""Transformers vision-language models by architecture: the table, page inputs, adapter.

Empty on purpose: `architectures` imports without torch or transformers (the workflow checks
presets while planning); the adapter is loaded by the registry in `vlmprof.models`.
"""
