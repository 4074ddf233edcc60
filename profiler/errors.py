"""The project's own exception types.

Library code raises these; the CLI turns them into one-line messages (see harness/cli/options.py).
Vendor errors (NVML, sqlite, torch) are translated into them with ``raise ... from e``.
"""


class EtameterError(Exception):
    """Base of every error etameter raises on purpose."""


class ConfigError(EtameterError, ValueError):
    """A configuration value is invalid; the message names the field and the fix."""


class StoreError(EtameterError):
    """The result database cannot be opened, read or written."""


class MeterUnavailable(EtameterError):
    """A power meter cannot be used on this machine; the message says why and how to fix it."""


class ProfileError(EtameterError):
    """A hardware profile file is invalid or a device has no profile."""


class UsageError(EtameterError, RuntimeError):
    """An API used out of order (a tracker stepped or closed after it was closed)."""
