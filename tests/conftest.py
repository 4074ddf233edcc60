import os

import pytest
import torch

from tests.hosts import write_host


def pytest_configure(config):
    """Hermetic host: unless CI already chose one (``$ETAMETER_HOST_ROOT``), every test and
    every process it starts reads a fake host tree (a known CPU, no RAPL) instead of this
    machine's, and an empty user profile directory instead of ~/.config/etameter/profiles."""
    import tempfile

    base = tempfile.mkdtemp(prefix="etameter-tests-")
    if not os.environ.get("ETAMETER_HOST_ROOT"):
        os.environ["ETAMETER_HOST_ROOT"] = str(write_host(os.path.join(base, "host"), "zen3"))
    profiles = os.path.join(base, "profiles")
    os.makedirs(profiles, exist_ok=True)
    os.environ["ETAMETER_PROFILES"] = profiles


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture
def db_path(tmp_path):
    return str(tmp_path / "etameter.db")
