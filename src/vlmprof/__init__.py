"""vlmprof: stage-by-stage profiling of vision-language-model inference."""

__version__ = "0.1.0"
