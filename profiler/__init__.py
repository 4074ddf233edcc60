"""etameter's measurement library: logical FLOPs, meters, timing windows, metrics and the store.

Importing this package does no work: it touches neither the GPU, NVML nor torch settings.
"""

__version__ = "0.1.0"
