"""Callbacks that run a Tracker inside other frameworks' training loops.

Each module imports its framework, so import it only where that framework is installed:
``profiler.integrations.lightning`` (PyTorch Lightning) and ``profiler.integrations.hf``
(Hugging Face transformers). This package itself imports neither.
"""
