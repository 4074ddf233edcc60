"""Plugins: modules named in $ETAMETER_VARIANT_PLUGINS that register their own converters."""

from __future__ import annotations

import importlib
import os

PLUGIN_ENV = "ETAMETER_VARIANT_PLUGINS"


def load_plugins() -> None:
    """Import the modules named in $ETAMETER_VARIANT_PLUGINS (comma-separated). Each
    registers its converters with ``harness.variants.register`` when imported; a module
    already imported is not imported again."""
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGIN_ENV, "").split(","))):
        importlib.import_module(module)
