"""Fake host trees for hermetic tests: ``/proc/cpuinfo`` (and no ``/sys/class/powercap``)
under a temporary root, pointed at by ``$ETAMETER_HOST_ROOT``.

Nothing in the suite may depend on the machine it runs on: by default every test (and every
process it starts) sees a known CPU (AMD EPYC 7763, Zen 3, two cores, no RAPL). CI runs the
suite a second time on an unknown CPU: ``python -m tests.hosts unknown DIR`` writes that tree.
"""

from __future__ import annotations

import sys
from pathlib import Path

HOSTS = {
    # A CPU with a built-in profile (amd-zen3-milan): peak and estimate from the profile.
    "zen3": {"vendor_id": "AuthenticAMD", "cpu family": "25", "model": "1",
             "model name": "AMD EPYC 7763 64-Core Processor", "cpu MHz": "2445.000",
             "flags": "fpu sse sse2 avx avx2 fma hypervisor"},
    # A CPU no profile knows (no vendor, family or flags any profile or ISA entry matches).
    "unknown": {"vendor_id": "FutureVendorX", "cpu family": "99", "model": "7",
                "model name": "Future CPU 9000", "cpu MHz": "3000.000",
                "flags": "fpu hypervisor"},
}


def write_host(root: str | Path, kind: str, cores: int = 2, hostname: str | None = None) -> Path:
    """Write ``<root>/proc/cpuinfo`` for ``kind``, one block per core; no powercap; and, given
    ``hostname``, ``<root>/proc/sys/kernel/hostname`` (two roots are then two hosts)."""
    root = Path(root)
    (root / "proc").mkdir(parents=True, exist_ok=True)
    fields = HOSTS[kind]
    blocks = []
    for i in range(cores):
        lines = [f"processor\t: {i}", *(f"{k}\t: {v}" for k, v in fields.items()),
                 "physical id\t: 0", f"core id\t: {i}"]
        blocks.append("\n".join(lines))
    (root / "proc" / "cpuinfo").write_text("\n\n".join(blocks) + "\n")
    if hostname is not None:
        (root / "proc" / "sys" / "kernel").mkdir(parents=True, exist_ok=True)
        (root / "proc" / "sys" / "kernel" / "hostname").write_text(hostname + "\n")
    return root


if __name__ == "__main__":
    print(write_host(sys.argv[2], sys.argv[1]))
