"""Plugins: modules named in $ETAMETER_VARIANT_PLUGINS that register their own converters.

A plugin that cannot be imported, raises while importing, or calls ``sys.exit`` becomes a
ConfigError naming the module and what went wrong, never a traceback or a silent exit."""

from __future__ import annotations

import importlib
import os

from profiler.errors import ConfigError, EtameterError

PLUGIN_ENV = "ETAMETER_VARIANT_PLUGINS"


def load_plugins() -> None:
    """Import the modules named in $ETAMETER_VARIANT_PLUGINS (comma-separated). Each
    registers its converters with ``harness.variants.register`` when imported; a module
    already imported is not imported again."""
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGIN_ENV, "").split(","))):
        _import(module)


def _import(module: str) -> None:
    where = f"variant plugin {module!r} (from ${PLUGIN_ENV})"
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as e:
        if e.name and module.startswith(e.name):
            raise ConfigError(f"{where} cannot be found: install it or fix ${PLUGIN_ENV}") from e
        raise ConfigError(f"{where} failed to import: {e}; fix the plugin or remove it from "
                          f"${PLUGIN_ENV}") from e
    except EtameterError as e:
        raise ConfigError(f"{where}: {e}") from e
    except SystemExit as e:
        raise ConfigError(f"{where} called sys.exit({e.code!r}) while importing: fix the "
                          f"plugin or remove it from ${PLUGIN_ENV}") from None
    except Exception as e:  # a plugin's own bug: name it, never a traceback
        raise ConfigError(f"{where} raised {type(e).__name__} while importing: "
                          f"{str(e)[:200]}; fix the plugin or remove it from ${PLUGIN_ENV}") from e
