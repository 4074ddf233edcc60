"""One record of a measurement, shared by the bench runner, the tracker and node runs.

A timed window is described once, by :class:`Window`: what was counted (steps, tokens,
logical FLOPs), how long it took, the denominators of MFU, and the energy read over it.
:func:`window_row` turns a window into the row every caller stores and prints, and
:func:`summarise` turns a run's rows into its summary. ``FIELDS`` lists the row's columns
with their units, labels and how each is summarised: the store's result columns, the report
columns and the bench view derive from it, so a new metric is a change to this module only.

Units are in the names: ``_s`` seconds, ``_j`` joules, ``_w`` watts, ``flops_per_s``.
A value that cannot be computed honestly is None with a reason, never zero or a guess.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field, replace

from profiler import metrics
# MAX_DEVICE_POWER_W: the most one device can draw; FLAG_IMPOSSIBLE: a figure that cannot be
# true was stored as null, its field's reason (or the row's ``detail``) saying why.
from profiler.meters.base import FLAG_IMPOSSIBLE, MAX_DEVICE_POWER_W, plausible  # noqa: F401
from profiler.stats import (LATENCY_PERCENTILES, geometric_interval, noise_note,  # noqa: F401
                            percentile)


@dataclass(frozen=True)
class Field:
    """A column of a window row.

    ``summary``: how a run's summary takes it from its rows (``median``, ``first``, ``last``,
    ``union`` of lists, or ``None``: not summarised). ``label``/``unit``/``fmt`` (``si``,
    ``pct``, ``text``) say how a view shows it; ``energy`` marks figures that inherit the
    energy's ``estimated`` label; ``reason`` names the field that says why it is missing.

    What a value may be (checked by :mod:`profiler.store.gate` wherever a figure enters the
    store): ``low``/``high`` the inclusive range (None: unbounded on that side; every number is
    finite and within ``MAX_FIGURE`` whatever its range); ``over_flag`` the flag that lets a
    value above ``high`` stand (up to ``MAX_OVER``: an MFU above 1 says its peak is too low);
    ``limit`` a bound that scales with the row: ``power`` (``devices x MAX_DEVICE_POWER_W``),
    ``energy`` (that power over ``duration_s``) or ``flops`` (``devices x
    MAX_DEVICE_FLOPS_PER_S``, also for tokens/s: a token costs at least one FLOP).
    """

    key: str
    type: type
    summary: str | None = "first"
    label: str | None = None
    unit: str = ""
    fmt: str = "si"
    energy: bool = False
    reason: str | None = None
    low: float | None = None
    high: float | None = None
    over_flag: str | None = None
    limit: str | None = None


#: Largest magnitude any stored figure may have: beyond anything one window can count.
MAX_FIGURE = 1e30
#: The highest an MFU-like ratio may be even when flagged (its peak is then 10x too low).
MAX_OVER = 10.0
#: Below this a measured matmul ceiling is a timer fault, not a device (1 MFLOP/s).
MIN_CEILING_FLOPS_PER_S = 1e6
#: Above this no single device computes (the fastest are near 1e16 FLOP/s at fp4 with
#: sparsity); a figure beyond it per device is a fault. Each token costs at least one FLOP.
MAX_DEVICE_FLOPS_PER_S = 1e17
#: The longest a window can take (30 years): a duration beyond it is a clock fault.
MAX_WINDOW_S = 1e9
#: Logical FLOPs per joule no computer can beat (Landauer: ~3e20 bit operations per joule at
#: room temperature, and a FLOP is many bit operations).
MAX_ETA_FLOPS_PER_J = 1e17
#: A ratio above 1 stands only with this flag: the figure it is held against is too low.
FLAG_ABOVE_PEAK = "above_peak"
_N = dict(low=0.0)  # a physical count or quantity: never negative
_RATIO = dict(low=0.0, high=1.0, over_flag=FLAG_ABOVE_PEAK)
_POWER = dict(low=0.0, limit="power")
_RATE = dict(low=0.0, limit="flops")  # per second, at most what the devices can compute
_TIME = dict(low=0.0, high=MAX_WINDOW_S)
_ENERGY = dict(low=0.0, limit="energy")


FIELDS: tuple[Field, ...] = (
    Field("window", int, None, **_N),
    Field("scope", str), Field("rank", int, None, **_N),
    Field("ranks", int, low=1), Field("devices", int, low=1),
    Field("host", str, None), Field("node", int, None, **_N), Field("nodes", int, low=1),
    Field("steps", int, low=1), Field("tokens", float, "median", **_N),
    Field("tokens_per_step", float, **_N),
    Field("duration_s", float, "median", **_TIME),
    Field("step_time_s", float, "median", **_TIME),
    Field("tokens_per_s", float, "median", "tokens/s", **_RATE),
    Field("logical_flops_per_token", float, **_N),
    Field("logical_flops_per_step", float, **_N), Field("logical_flops", float, "median", **_N),
    Field("flops_per_s", float, "median", "achieved FLOP/s", "FLOP/s", **_RATE),
    Field("precision", str), Field("peak_flops_per_s", float, **_RATE),
    Field("peak_source", str),
    Field("mfu", float, "median", "MFU", fmt="pct", reason="mfu_reason", **_RATIO),
    Field("mfu_reason", str),
    Field("variant_precision", str),
    Field("mfu_vs_variant_peak", float, "median", fmt="pct", reason="variant_peak_reason",
          **_RATIO),
    Field("variant_peak_reason", str),
    Field("mfu_vs_ceiling", float, "median", "MFU vs measured ceiling", fmt="pct",
          reason="ceiling_reason", **_RATIO),
    Field("ceiling_flops_per_s", float, low=MIN_CEILING_FLOPS_PER_S, reason="ceiling_reason",
          limit="flops"),
    Field("ceiling_reason", str),
    Field("peak_note", str),
    Field("energy_j", float, "median", "energy", "J", energy=True, reason="energy_reason",
          **_ENERGY),
    Field("energy_method", str), Field("energy_scope", str),
    Field("energy_estimated", int, low=0, high=1),
    Field("energy_reason", str),
    Field("energy_low_j", float, "median", energy=True, **_ENERGY),
    Field("energy_high_j", float, "median", energy=True, **_ENERGY),
    Field("avg_power_w", float, "median", "average power", "W", energy=True, **_POWER),
    Field("peak_power_w", float, "median", energy=True, **_POWER),
    Field("idle_power_w", float, energy=True, **_POWER),
    Field("energy_net_j", float, "median", "net of idle", "J", energy=True,
          reason="energy_net_reason", limit="energy"),
    Field("energy_net_reason", str),
    Field("eta_flops_per_j", float, "median", "eta (logical FLOP/J)", energy=True,
          reason="eta_reason", low=0.0, high=MAX_ETA_FLOPS_PER_J),
    Field("eta_reason", str),
    Field("eta_low_flops_per_j", float, "median", energy=True, low=0.0,
          high=MAX_ETA_FLOPS_PER_J),
    Field("eta_high_flops_per_j", float, "median", energy=True, low=0.0,
          high=MAX_ETA_FLOPS_PER_J),
    Field("tokens_per_j", float, "median", "tokens/J", energy=True, **_N),
    # Decode latency (None with a reason for train and prefill): the time to the first token
    # (a prefill of the context, timed once per window outside its throughput timing) and
    # percentiles of the per-token decode latency over the window's tokens.
    Field("first_token_s", float, "median", "time to first token", "s", reason="latency_reason", **_TIME),
    Field("token_latency_p50_s", float, "median", "per-token latency p50", "s",
          reason="latency_reason", **_TIME),
    Field("token_latency_p90_s", float, "median", "per-token latency p90", "s",
          reason="latency_reason", **_TIME),
    Field("token_latency_p99_s", float, "median", "per-token latency p99", "s",
          reason="latency_reason", **_TIME),
    Field("latency_reason", str),
    Field("attention_convention", str),
    Field("flags", str, "union"),
    Field("loss_first", float, "first"), Field("loss_last", float, "last"),
    Field("detail", str, None),
)
#: Column name -> Python type, for the store's results table.
ROW_COLUMNS: dict[str, type] = {f.key: f.type for f in FIELDS}

NO_IDLE_REASON = "no idle baseline was measured (use --idle-s)"
#: A measured matmul ceiling above the assumed dense peak: the peak is too low.
FLAG_PEAK_BELOW_CEILING = "peak_below_ceiling"
#: The run's throughput interval is wider than profiler.stats.NOISE_THRESHOLD.
FLAG_NOISY = "noisy"
#: What each flag a row can carry means, and what to do about it: shown beside the flags.
FLAG_MEANINGS = {
    "approximate": "a window shorter than its meter's minimum (1 s for the CPU estimate and "
                   "RAPL; several sensor periods for a GPU) or with too few power samples: use "
                   "longer windows (--window-s, or more --steps)",
    "estimated": "energy from a model, not a meter (no RAPL or GPU counter here): see its band",
    "generic_cpu_power": "no profile for this CPU: the energy estimate uses a generic per-core "
                         "power; pass --cpu-tdp-w or --profile for a better figure",
    "noisy": "the throughput interval is wider than 5% either side: see the noise note",
    "throttled": "the device reported a power, thermal or hardware slowdown in the window",
    "counters_disagree": "the energy counter and the integrated power samples differ by more "
                         "than the tolerance",
    "sampling_errors": "some power readings failed during the window (counted in its detail)",
    "peak_below_ceiling": "a measured matmul ceiling exceeds the assumed dense peak: read MFU "
                          "against the ceiling",
    "flops_uncounted": "the FLOP counter could not see some modules' work (allow_uncounted)",
    "above_peak": "an MFU figure exceeds 1: the peak or ceiling it is held against is too low",
    "impossible_value": "a figure that cannot be true was stored as missing: see its reason",
}


def flag_notes(flags) -> list[str]:
    """``flag: meaning`` for each flag (unknown flags as they are)."""
    return [f"{f}: {FLAG_MEANINGS[f]}" if f in FLAG_MEANINGS else f for f in flags]


#: Summary figures that also get a 95% interval over the windows (``<key>_ci_low/_ci_high``):
#: the interval of the geometric mean, on the log scale, so it never reaches below zero.
INTERVAL_KEYS = ("tokens_per_s", "step_time_s", "flops_per_s", "mfu", "energy_j",
                 "avg_power_w", "eta_flops_per_j", "tokens_per_j")


@dataclass(frozen=True)
class Energy:
    """Energy of one window (summed over its devices), or None with the reason."""

    energy_j: float | None
    method: str | None = None
    scope: str | None = None
    estimated: bool | None = None
    reason: str | None = None
    peak_power_w: float | None = None
    flags: tuple[str, ...] = ()
    devices: tuple[dict, ...] = ()
    #: For an estimate: the (low, high) band the energy may lie in.
    band_j: tuple[float, float] | None = None

    @classmethod
    def missing(cls, reason: str) -> "Energy":
        return cls(None, reason=reason)

    @classmethod
    def from_reading(cls, reading, missing_reason: str | None = None) -> "Energy":
        """From a meter's EnergyReading; ``missing_reason`` when there was no meter. A device
        energy that cannot be true becomes missing with the reason (``meters.base.plausible``)."""
        if reading is None:
            return cls.missing(missing_reason or "no meter was available")
        reading = plausible(reading)  # no meter can invent energy
        return cls(reading.energy_j, reading.method, reading.scope, reading.estimated,
                   reading.reason if reading.energy_j is None else None, reading.peak_power_w,
                   tuple(reading.all_flags), tuple(d.to_dict() for d in reading.devices),
                   reading.energy_band_j)


@dataclass(frozen=True)
class Window:
    """What one timed window counted and measured, on one process (or a node, aggregated).

    ``peak_flops_per_s`` is the dense peak of all ``devices`` together at ``precision``
    (the MFU denominator); ``variant_peak_flops_per_s`` the same at the precision the
    variant computes in. ``idle_power_w`` is the idle power of the same devices.
    """

    window: int
    steps: int
    duration_s: float
    tokens: float
    logical_flops: float
    logical_flops_per_token: float
    attention_convention: str
    precision: str
    peak_flops_per_s: float | None
    peak_source: str
    energy: Energy
    device_key: str
    variant_precision: str | None = None
    variant_peak_flops_per_s: float | None = None
    variant_peak_source: str | None = None
    ceiling_flops_per_s: float | None = None
    ceiling_reason: str | None = None
    idle_power_w: float | None = None
    idle_reason: str | None = NO_IDLE_REASON
    loss_first: float | None = None
    loss_last: float | None = None
    logical_flops_per_step: float | None = None  # None: logical_flops / steps
    scope: str = "node"  # "rank", "node" (one host) or "cluster" (several hosts)
    rank: int | None = None
    ranks: int = 1
    devices: int = 1
    host: str | None = None  # the host of a rank or node window
    node: int | None = None  # the node's index (its order by lowest global rank)
    nodes: int = 1
    flags: tuple[str, ...] = ()
    detail: dict = field(default_factory=dict)
    #: (device label, ((t_s, power_w), ...)) for meters that sample power.
    power_traces: tuple = ()
    #: Decode: the time to the first token (s) and each generated token's latency (s).
    first_token_s: float | None = None
    token_latencies_s: tuple[float, ...] = ()
    latency_reason: str | None = "latency is measured for decode runs only"

    def as_rank(self, rank: int) -> "Window":
        return replace(self, scope="rank", rank=rank)


def window_row(w: Window) -> dict:
    """The stored row of a window: every key of ``FIELDS``, None where missing (with a reason)."""
    flops_per_s = w.logical_flops / w.duration_s
    mfu = metrics.mfu(flops_per_s, w.peak_flops_per_s, missing_reason=w.peak_source)
    own = metrics.mfu(flops_per_s, w.variant_peak_flops_per_s,
                      missing_reason=w.variant_peak_source or w.peak_source)
    e = w.energy
    eta = metrics.eta(w.logical_flops, e.energy_j, missing_reason=e.reason)
    net_j, net_reason = _net_energy(w)
    low_j, high_j = e.band_j or (None, None)
    peak_note, peak_flags = _peak_check(w)
    row = {
        "window": w.window, "scope": w.scope, "rank": w.rank, "ranks": w.ranks,
        "devices": w.devices, "host": w.host, "node": w.node, "nodes": w.nodes,
        "steps": w.steps, "tokens": w.tokens,
        "tokens_per_step": _per_step(w.tokens, w.steps),
        "duration_s": w.duration_s, "step_time_s": w.duration_s / w.steps,
        "tokens_per_s": w.tokens / w.duration_s,
        "logical_flops_per_token": w.logical_flops_per_token,
        "logical_flops_per_step": (w.logical_flops_per_step if w.logical_flops_per_step is not None
                                   else w.logical_flops / w.steps),
        "logical_flops": w.logical_flops, "flops_per_s": flops_per_s,
        "precision": w.precision, "peak_flops_per_s": w.peak_flops_per_s,
        "peak_source": w.peak_source, "mfu": mfu.value, "mfu_reason": mfu.reason,
        "variant_precision": w.variant_precision or w.precision,
        "mfu_vs_variant_peak": own.value, "variant_peak_reason": own.reason,
        "mfu_vs_ceiling": (flops_per_s / w.ceiling_flops_per_s if w.ceiling_flops_per_s else None),
        "ceiling_flops_per_s": w.ceiling_flops_per_s,
        "ceiling_reason": None if w.ceiling_flops_per_s else w.ceiling_reason,
        "peak_note": peak_note,
        "energy_j": e.energy_j, "energy_method": e.method, "energy_scope": e.scope,
        "energy_estimated": e.estimated, "energy_reason": e.reason if e.energy_j is None else None,
        "energy_low_j": low_j, "energy_high_j": high_j,
        "avg_power_w": metrics.per_second(e.energy_j, w.duration_s),
        "peak_power_w": e.peak_power_w, "idle_power_w": w.idle_power_w,
        "energy_net_j": net_j, "energy_net_reason": net_reason,
        "eta_flops_per_j": eta.value, "eta_reason": eta.reason,
        "eta_low_flops_per_j": metrics.per_joule(w.logical_flops, high_j),
        "eta_high_flops_per_j": metrics.per_joule(w.logical_flops, low_j),
        "tokens_per_j": metrics.per_joule(w.tokens, e.energy_j),
        "attention_convention": w.attention_convention,
        "flags": sorted(set(e.flags) | set(w.flags) | peak_flags),
        "loss_first": w.loss_first, "loss_last": w.loss_last,
        **_latency(w),
        "detail": {"device_key": w.device_key, "energy_devices": list(e.devices), **w.detail},
    }
    return row


def top_rows(rows: list[dict]) -> list[dict]:
    """The rows that stand for a whole run's windows: its ``cluster`` rows where it spans
    several nodes, else its ``node`` rows (rows without a scope count as node rows)."""
    cluster = [r for r in rows if r.get("scope") == "cluster"]
    return cluster or [r for r in rows if r.get("scope") in (None, "node")]


def _latency(w: Window) -> dict:
    """The decode latency figures of a window, or None with the reason."""
    row = {"first_token_s": w.first_token_s}
    lat = sorted(w.token_latencies_s)
    for key, q in LATENCY_PERCENTILES:
        row[key] = percentile(lat, q) if lat else None
    measured = lat or w.first_token_s is not None
    row["latency_reason"] = None if measured else (w.latency_reason or "not measured")
    return row


def _per_step(tokens: float, steps: int) -> float:
    per = tokens / steps
    return int(per) if float(per).is_integer() else per


def _peak_check(w: Window) -> tuple[str | None, set[str]]:
    """A measured ceiling above the assumed dense peak means the peak is too low."""
    if not (w.ceiling_flops_per_s and w.peak_flops_per_s) or \
            w.ceiling_flops_per_s <= w.peak_flops_per_s:
        return None, set()
    return (f"the measured {w.precision} matmul ceiling ({w.ceiling_flops_per_s:.4g} FLOP/s) "
            f"exceeds the assumed dense peak ({w.peak_flops_per_s:.4g} FLOP/s): the assumed "
            "peak is too low (for example a boost clock above the nominal one); read MFU "
            "against the measured ceiling beside it"), {FLAG_PEAK_BELOW_CEILING}


def _net_energy(w: Window) -> tuple[float | None, str | None]:
    """Gross minus idle: ``energy_j - idle_power_w * duration_s``, or None with the reason."""
    if w.idle_power_w is None:
        return None, w.idle_reason or NO_IDLE_REASON
    if w.energy.energy_j is None:
        return None, "gross energy or idle power is missing"
    return w.energy.energy_j - w.idle_power_w * w.duration_s, None


def summarise(rows: list[dict], noise_advice: str | None = None) -> dict:
    """A run's summary over its rows: medians of the measured figures, labels of the first
    row, the union of flags, the first and last loss, the spread of throughput, a 95% interval
    of the geometric mean of each ``INTERVAL_KEYS`` figure (None with fewer than two windows),
    and the ``noisy`` flag with its note (ending in ``noise_advice``, what the caller can do
    about it; bench's flags by default) where the throughput interval is too wide. A median
    missing because some windows lack the figure says so in its reason field."""
    summary: dict = {}
    partial: dict[str, str] = {}
    first = rows[0] if rows else {}
    for f in FIELDS:
        values = [r.get(f.key) for r in rows]
        if f.summary == "median":
            summary[f.key] = statistics.median(values) if values and None not in values else None
            missing = sum(v is None for v in values)
            if f.reason and 0 < missing < len(values):
                why = next((r.get(f.reason) for r in rows if r.get(f.reason)), "see the windows")
                partial[f.reason] = (f"measured in {len(values) - missing} of {len(values)} "
                                     f"windows only: {why}")
        elif f.summary == "first":
            summary[f.key] = first.get(f.key)
        elif f.summary == "last":
            summary[f.key] = rows[-1].get(f.key) if rows else None
        elif f.summary == "union":
            summary[f.key] = sorted({x for v in values for x in (v or [])})
    summary.update(partial)
    tps = [r["tokens_per_s"] for r in rows if r.get("tokens_per_s") is not None]
    summary["tokens_per_s_spread"] = ((max(tps) - min(tps)) / statistics.median(tps)
                                      if tps and statistics.median(tps) > 0 else None)
    for key in INTERVAL_KEYS:
        values = [r.get(key) for r in rows]
        ci = geometric_interval(values) if None not in values else None
        summary[f"{key}_ci_low"], summary[f"{key}_ci_high"] = (ci.low, ci.high) if ci else (None, None)
    summary["noise_note"] = noise_note(geometric_interval(tps), advice=noise_advice)
    if summary["noise_note"]:
        summary["flags"] = sorted({*summary.get("flags", []), FLAG_NOISY})
    summary["windows"] = len(rows)
    return summary
