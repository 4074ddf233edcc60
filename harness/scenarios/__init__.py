"""Benchmark scenarios: each builds its workload and knows its logical FLOPs per step."""

from harness.scenarios.base import Scenario
from harness.scenarios.decode import DecodeScenario
from harness.scenarios.prefill import PrefillScenario
from harness.scenarios.train import TrainScenario

SCENARIOS: dict[str, type[Scenario]] = {
    "train": TrainScenario, "prefill": PrefillScenario, "decode": DecodeScenario,
}

__all__ = ["SCENARIOS", "Scenario", "TrainScenario", "PrefillScenario", "DecodeScenario"]
