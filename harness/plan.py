"""What a benchmark runs: the user's :class:`BenchConfig`, resolved once into a :class:`Plan`.

A plan is made once, in the parent process (device detection, profiles, preset, sizes,
variants), and handed as data to every process that runs part of it: per-variant workers and
torchrun ranks receive the same serialised plan (``Plan.to_json``/``Plan.from_json``) instead
of detecting and deciding again.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from hardware_profiles.device import DeviceContext, resolve_device
from hardware_profiles.profiles import load_profiles
from harness.model_files import ModelSpec, load_model_file, slice_layers
from harness.presets import default_preset, get_preset
from harness.quality import Tolerance
from harness.scenarios import SCENARIOS
from harness.variants import Variant, default_precision, parse_variant
from profiler.errors import ConfigError
from profiler.flops import check_convention


@dataclass(frozen=True)
class BenchConfig:
    """What to benchmark. ``None`` fields take the preset's or the device's default."""

    preset: str | None = None
    scenario: str = "train"
    variants: tuple[str, ...] = ()  # empty: the device's default precision
    batch_size: int | None = None
    seq_len: int | None = None  # decode: the context length
    new_tokens: int = 16  # decode: tokens generated per sequence per step
    steps: int | None = None  # timed steps per window; None: enough for the window target
    trials: int = 3  # timed windows
    warmup_steps: int = 2
    target_window_s: float = 10.0  # all windows together, when steps is None
    attention_convention: str = "full"
    device: str = "auto"
    seed: int = 0
    cpu_tdp_w: float | None = None
    profile_files: tuple[str, ...] = ()
    idle_s: float = 0.0  # measure idle power for this long before the run (0: off)
    cooldown_s: float = 0.0  # wait this long before the idle measurement
    quality: bool = True
    tolerance: Tolerance = field(default_factory=Tolerance)
    nproc: int | None = None  # processes under torchrun (DDP for train); None: this process
    model_file: str | None = None  # a Hugging Face config.json or etameter TOML (not --preset)
    layers: int | None = None  # run only the first N layers of the model, at full width
    prometheus_port: str | None = None  # [ADDR:]PORT: serve live metrics (PORT + local rank)
    pushgateway: str | None = None  # a Pushgateway URL: push live metrics after every window
    nnodes: int | None = None  # nodes under torchrun's c10d rendezvous; None: one node
    node_rank: int = 0  # this node's rank (0: the node whose global rank 0 stores)
    rdzv_endpoint: str | None = None  # HOST:PORT of the rendezvous (on node 0)
    rdzv_id: str | None = None  # the job's rendezvous id, the same on every node

    def __post_init__(self) -> None:
        if self.scenario not in SCENARIOS:
            raise ConfigError(f"scenario must be one of {tuple(SCENARIOS)}, got {self.scenario!r}")
        for name in ("batch_size", "seq_len", "steps", "nproc", "layers"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ConfigError(f"{name} must be positive, got {value}")
        for name in ("new_tokens", "trials"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if not 0 <= self.seed < 2 ** 63:
            raise ConfigError(f"seed must be between 0 and 2**63 - 1, got {self.seed}")
        if self.warmup_steps < 0:
            raise ConfigError(f"warmup_steps must be >= 0, got {self.warmup_steps}")
        if not self.target_window_s > 0:
            raise ConfigError(f"target_window_s must be positive, got {self.target_window_s}")
        if self.cpu_tdp_w is not None and not self.cpu_tdp_w > 0:
            raise ConfigError(f"cpu_tdp_w must be positive, got {self.cpu_tdp_w}")
        if not (self.idle_s >= 0 and self.cooldown_s >= 0):
            raise ConfigError("idle_s and cooldown_s must be >= 0")
        check_convention(self.attention_convention)
        self._check_nodes()
        if self.prometheus_port is not None:
            from profiler.metrics_export import parse_address

            parse_address(self.prometheus_port)
        if self.preset is not None and self.model_file is not None:
            raise ConfigError("give the model one way: --preset NAME or --model FILE, not both")
        if self.preset is not None:
            get_preset(self.preset)

    def _check_nodes(self) -> None:
        if self.nnodes is None:
            if self.node_rank or self.rdzv_endpoint or self.rdzv_id:
                raise ConfigError("--node-rank, --rdzv-endpoint and --rdzv-id need --nnodes M "
                                  "(or --slurm)")
            return
        if self.nnodes <= 0:
            raise ConfigError(f"nnodes must be positive, got {self.nnodes}")
        if not 0 <= self.node_rank < self.nnodes:
            raise ConfigError(f"--node-rank must be between 0 and {self.nnodes - 1} for "
                              f"--nnodes {self.nnodes}, got {self.node_rank}")
        host, _, port = (self.rdzv_endpoint or "").rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"--nnodes {self.nnodes} needs --rdzv-endpoint HOST:PORT (node 0's "
                              f"address and a free port), got {self.rdzv_endpoint!r}")

    @property
    def ranks_per_node(self) -> int | None:
        """Processes per node under torchrun (``nproc``; 1 on each node of a multi-node run)."""
        return self.nproc or (1 if self.nnodes else None)

    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict) -> "BenchConfig":
        data = dict(data)
        data["tolerance"] = Tolerance(**data["tolerance"])
        for key in ("variants", "profile_files"):
            data[key] = tuple(data[key])
        return cls(**data)


@dataclass
class Plan:
    """What a sweep will run, resolved once: device, preset, sizes and variants."""

    cfg: BenchConfig
    ctx: DeviceContext
    preset: ModelSpec
    preset_reason: str
    batch_size: int
    seq_len: int
    variants: list[Variant]
    #: The first variant's compute precision: the vendor MFU denominator of the whole sweep.
    reference_precision: str = ""
    #: How the sequence length was chosen (decode's default context fits max_seq_len).
    seq_len_reason: str = ""
    #: How the batch size was chosen.
    batch_reason: str = ""

    def __post_init__(self) -> None:
        self.reference_precision = self.reference_precision or self.variants[0].compute_precision

    def for_variant(self, variant: Variant) -> "Plan":
        """The plan of one variant of this sweep (same reference precision)."""
        return replace(self, variants=[variant])

    def to_json(self) -> dict:
        return {"config": self.cfg.to_json(), "device": self.ctx.to_spec(),
                "preset": self.preset.to_dict(), "preset_reason": self.preset_reason,
                "batch_size": self.batch_size, "seq_len": self.seq_len,
                "variants": [v.name for v in self.variants],
                "reference_precision": self.reference_precision,
                "seq_len_reason": self.seq_len_reason, "batch_reason": self.batch_reason}

    @classmethod
    def from_json(cls, data: dict) -> "Plan":
        """The plan ``to_json`` wrote; no detection, no defaults decided again."""
        cfg = BenchConfig.from_json(data["config"])
        ctx = DeviceContext.from_spec(data["device"], load_profiles(cfg.profile_files))
        variants = [parse_variant(n, cfg.scenario, ctx.type) for n in data["variants"]]
        return cls(cfg, ctx, ModelSpec.from_dict(data["preset"]), data["preset_reason"],
                   data["batch_size"], data["seq_len"], variants, data["reference_precision"],
                   data.get("seq_len_reason", ""), data.get("batch_reason", ""))


def make_plan(cfg: BenchConfig, ctx: DeviceContext | None = None) -> Plan:
    """Resolve the device, preset, sizes and variants of ``cfg``; errors name the option."""
    ctx = ctx or resolve_device(cfg.device, cfg.profile_files)
    if cfg.model_file is not None:
        preset, reason = load_model_file(cfg.model_file), f"--model {cfg.model_file}"
    elif cfg.preset is not None:
        preset, reason = get_preset(cfg.preset), "chosen with --preset"
    else:
        preset, reason = default_preset(ctx.type, ctx.memory_gib)
    preset = slice_layers(preset, cfg.layers)
    batch = cfg.batch_size or preset.batch_size
    batch_reason = ("chosen with --batch" if cfg.batch_size else
                    preset.batch_reason or f"the {preset.name} preset's batch size")
    seq, seq_reason = default_seq_len(cfg, preset)
    names = cfg.variants or (default_precision(cfg.scenario, ctx.type),)
    variants = [parse_variant(n, cfg.scenario, ctx.type) for n in names]
    seen = set()
    for v in variants:
        if v.name in seen:
            raise ConfigError(f"variant {v.name} is listed twice")
        seen.add(v.name)
    plan = Plan(cfg, ctx, preset, reason, batch, seq, variants, seq_len_reason=seq_reason,
                batch_reason=batch_reason)
    if len(variants) == 1 and not cfg.nproc:
        check_memory(plan)
    return plan


def default_seq_len(cfg: BenchConfig, preset: ModelSpec) -> tuple[int, str]:
    """The sequence length (decode: the context) and why; ConfigError if it cannot fit.

    Decode needs the context plus ``--new-tokens`` in the model's max_seq_len: without
    ``--seq`` the context is the preset's sequence length capped at max_seq_len - new_tokens.
    """
    limit = preset.model.max_seq_len
    decode = cfg.scenario == "decode"
    new = cfg.new_tokens if decode else 0
    if cfg.seq_len is not None:
        if cfg.seq_len + new > limit:
            raise ConfigError(f"--seq {cfg.seq_len}" + (f" + --new-tokens {new}" if decode else "")
                              + f" exceeds the {preset.name} preset's max_seq_len {limit}")
        return cfg.seq_len, "chosen with --seq"
    given = preset.seq_reason or f"the {preset.name} preset's sequence length"
    if not decode:
        return preset.seq_len, given
    if new >= limit:
        raise ConfigError(f"--new-tokens {new} leaves no context within the {preset.name} "
                          f"preset's max_seq_len {limit}: use --new-tokens {limit // 2} or fewer")
    seq = min(preset.seq_len, limit - new)
    if seq == preset.seq_len:
        return seq, given
    return seq, (f"decode context {seq} = max_seq_len {limit} - --new-tokens {new} (the "
                 f"preset's {preset.seq_len} would not leave room for the new tokens)")


def whole_model_flops(plan: Plan) -> dict | None:
    """With ``--layers``: the whole model's logical FLOPs at the plan's sizes (the slice is
    what runs; this is what the whole model would need), else None."""
    spec = plan.preset
    if not spec.full_layers:
        return None
    from profiler.flops import logical_flops

    whole = logical_flops(spec.whole_model.shape(), plan.cfg.scenario,
                          batch_size=plan.batch_size, seq_len=plan.seq_len,
                          convention=plan.cfg.attention_convention,
                          new_tokens=plan.cfg.new_tokens)
    return {"n_layers": spec.full_layers, "slice_layers": spec.model.n_layers,
            "logical_flops_per_token": whole.flops_per_token,
            "logical_flops_per_step": whole.flops_per_step}


def check_memory(plan: Plan) -> None:
    """Refuse a single run that would not fit in memory, with the estimate, the limit and the
    largest batch that fits (a sweep skips such a variant instead: harness.execute)."""
    from harness.memory import memory_shortfall
    from harness.variants import moe_model_config

    variant = plan.variants[0]
    _, reason = memory_shortfall(moe_model_config(plan.preset.model, variant), plan.cfg.scenario,
                                 plan.batch_size, plan.seq_len, plan.cfg.new_tokens, variant,
                                 plan.ctx.torch_device)
    if reason:
        raise ConfigError(f"{variant.name} on {plan.preset.name} ({plan.cfg.scenario}, batch "
                          f"{plan.batch_size} x {plan.seq_len}) {reason}")
