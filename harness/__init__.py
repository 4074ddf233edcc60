"""The benchmark harness: reference model, presets, scenarios, the runner and the CLI."""
