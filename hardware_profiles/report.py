"""What etameter knows about this machine's devices, as one document: each detected device,
the profile it matched and why, its dense peak per precision with the source, and the
ceilings measured by ``etameter calibrate``."""

from __future__ import annotations

#: The keys of a stored ceiling shown in the devices document.
CEILING_KEYS = ("kind", "precision", "value", "unit", "size", "spread", "created_at", "id")


def device_document(ctx, store=None) -> dict:
    """One DeviceContext: ``describe()``, its peaks per precision and its stored ceilings
    (none when ``store`` is None; ``noisy`` ones are never used for MFU)."""
    from hardware_profiles.profiles import PRECISIONS

    peaks = {}
    for p in PRECISIONS:
        peak = ctx.peak(p)
        peaks[p] = {"flops_per_s": peak.flops_per_s, "source": peak.source}
    ceilings = [{**{k: c[k] for k in CEILING_KEYS}, "noisy": bool(c["detail"].get("noisy"))}
                for c in (store.calibrations(ctx.key) if store else [])]
    return {**ctx.describe(), "peaks": peaks, "ceilings": ceilings}


def devices_document(profile_files: tuple = (), store=None) -> list[dict]:
    """``device_document`` of the CPU and every CUDA device torch sees."""
    from hardware_profiles.device import all_devices

    return [device_document(ctx, store) for ctx in all_devices(tuple(profile_files))]
