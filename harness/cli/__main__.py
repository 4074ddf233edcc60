"""``python -m harness.cli``: the same as the ``etameter`` command."""

from harness.cli import cli

if __name__ == "__main__":  # pragma: no cover
    cli()
