"""The README's promises: two quickstart commands, CI runs the test one, every command listed."""

import re
from pathlib import Path

from harness.cli import cli

ROOT = Path(__file__).resolve().parent.parent


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    return [line for line in block.splitlines() if line.strip()]


def test_quickstart_is_two_commands():
    commands = quickstart_commands()
    assert len(commands) == 2
    assert commands[0].endswith("etameter bench")
    assert "pytest" in commands[1]


def test_ci_runs_the_readme_test_command_after_the_cpu_torch():
    ci = (ROOT / ".ci/run").read_text()
    test_command = quickstart_commands()[1]
    assert test_command in ci
    assert ci.index("torch==2.13.0") < ci.index(test_command)


def test_every_cli_command_is_documented():
    readme = (ROOT / "README.md").read_text()
    for name in cli.commands:
        assert f"`etameter {name}`" in readme, name
