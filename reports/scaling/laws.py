"""Scaling laws: the compute law ``L(C) = L_inf + A * C^-alpha`` and the Chinchilla form
``L(N, D) = E + A/N^a + B/D^b`` with its conversion to the compute law (C = 6 N D).

Compute is always in FLOPs here. The Chinchilla irreducible loss is ``e_irr`` in code, never
``E``, to keep it apart from energy.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

from profiler.errors import ConfigError

PF_DAY_FLOP = 8.64e19  # 1 PF-day = 1e15 FLOP/s x 86400 s


def _finite(name: str, **values) -> None:
    bad = {k: v for k, v in values.items() if not isinstance(v, (int, float)) or not math.isfinite(v)}
    if bad:
        raise ConfigError(f"law {name}: constants must be finite numbers, got "
                          + ", ".join(f"{k}={v!r}" for k, v in bad.items()))


@dataclass(frozen=True)
class ComputeLaw:
    """``L(C) = l_inf + a * C^-alpha``, C in FLOPs."""

    l_inf: float
    a: float
    alpha: float
    name: str = "custom"
    source: str = ""

    def __post_init__(self) -> None:
        _finite(self.name, l_inf=self.l_inf, a=self.a, alpha=self.alpha)
        if self.a <= 0 or self.alpha <= 0 or self.l_inf < 0:
            raise ConfigError(f"law {self.name}: need a > 0, alpha > 0 and l_inf >= 0")

    def loss(self, compute_flop: float) -> float:
        if compute_flop <= 0:
            raise ConfigError(f"compute must be positive, got {compute_flop}")
        return self.l_inf + self.a * compute_flop ** -self.alpha

    def compute_for_loss(self, target_loss: float) -> float:
        """``C* = (a / (L* - l_inf))^(1/alpha)``."""
        if target_loss <= self.l_inf:
            raise ConfigError(f"target loss {target_loss} is at or below the law's irreducible "
                              f"loss {self.l_inf:.4g}: no compute reaches it")
        return (self.a / (target_loss - self.l_inf)) ** (1.0 / self.alpha)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ChinchillaLaw:
    """``L(N, D) = e_irr + a_coef/N^a + b_coef/D^b`` (Hoffmann et al. 2022 form)."""

    e_irr: float
    a_coef: float
    b_coef: float
    a: float
    b: float
    name: str = "custom"
    source: str = ""

    def __post_init__(self) -> None:
        _finite(self.name, e_irr=self.e_irr, a_coef=self.a_coef, b_coef=self.b_coef, a=self.a,
                b=self.b)
        if min(self.a_coef, self.b_coef, self.a, self.b) <= 0 or self.e_irr < 0:
            raise ConfigError(f"law {self.name}: coefficients and exponents must be positive")

    def loss(self, n_params: float, n_tokens: float) -> float:
        return self.e_irr + self.a_coef / n_params ** self.a + self.b_coef / n_tokens ** self.b

    @property
    def g(self) -> float:
        """``G = (a A / (b B))^(1/(a+b))``."""
        return (self.a * self.a_coef / (self.b * self.b_coef)) ** (1.0 / (self.a + self.b))

    @property
    def alpha_c(self) -> float:
        return self.a * self.b / (self.a + self.b)

    def optimal(self, compute_flop: float) -> tuple[float, float]:
        """Compute-optimal (N, D) for a budget with ``C = 6 N D``."""
        c6 = compute_flop / 6.0
        s = self.a + self.b
        return self.g * c6 ** (self.b / s), c6 ** (self.a / s) / self.g

    def compute_law(self) -> ComputeLaw:
        """The compute law along the compute-optimal frontier (theory.md section 3)."""
        a_c = (self.a_coef * self.g ** -self.a + self.b_coef * self.g ** self.b) * 6.0 ** self.alpha_c
        return ComputeLaw(l_inf=self.e_irr, a=a_c, alpha=self.alpha_c, name=self.name,
                          source=self.source)

    def to_dict(self) -> dict:
        return {**asdict(self), "g": self.g, "alpha_c": self.alpha_c}


def kaplan() -> ComputeLaw:
    """Kaplan et al. 2020: ``L(C) = (3.1e8 / C)^0.050`` with C in PF-days, in FLOPs."""
    alpha = 0.050
    return ComputeLaw(l_inf=0.0, a=(3.1e8 * PF_DAY_FLOP) ** alpha, alpha=alpha, name="kaplan",
                      source="Kaplan et al. 2020, L(C) = (3.1e8 / C_PF-days)^0.050")


PRESETS = {
    "kaplan": kaplan,
    "chinchilla": lambda: ChinchillaLaw(1.69, 406.4, 410.7, 0.34, 0.28, "chinchilla",
                                        "Hoffmann et al. 2022, Approach 3, rounded as printed"),
    "chinchilla-unrounded": lambda: ChinchillaLaw(
        1.69337368, 406.401018, 410.722827, 0.33917084, 0.2849083, "chinchilla-unrounded",
        "Hoffmann et al. 2022, Approach 3 at the precision of its TeX source, as given by "
        "Besiroglu et al. 2024"),
    "epoch-2024": lambda: ChinchillaLaw(1.817, 482.01, 2085.43, 0.3478, 0.3658, "epoch-2024",
                                        "Besiroglu et al. 2024 (Chinchilla replication)"),
}


def get_law(name: str) -> ComputeLaw | ChinchillaLaw:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ConfigError(f"unknown law {name!r}: choose {', '.join(PRESETS)}, give your own "
                          "with --law-constants, or fit your own points with --fit FILE") from None


def parse_law_constants(text: str) -> ComputeLaw | ChinchillaLaw:
    """A user's law from ``'l_inf=..,a=..,alpha=..'`` (compute law) or
    ``'e_irr=..,a_coef=..,b_coef=..,a=..,b=..'`` (Chinchilla form), as ``--law-constants``."""
    try:
        values = {k.strip(): float(v) for k, v in (p.split("=") for p in text.split(","))}
    except ValueError as e:
        raise ConfigError(f"--law-constants {text!r}: write name=value pairs separated by commas") from e
    if set(values) == {"l_inf", "a", "alpha"}:
        return ComputeLaw(name="custom", source="--law-constants", **values)
    if set(values) == {"e_irr", "a_coef", "b_coef", "a", "b"}:
        return ChinchillaLaw(name="custom", source="--law-constants", **values)
    raise ConfigError("--law-constants needs l_inf,a,alpha or e_irr,a_coef,b_coef,a,b; "
                      f"got {', '.join(sorted(values))}")


def as_compute_law(law: ComputeLaw | ChinchillaLaw) -> ComputeLaw:
    return law.compute_law() if isinstance(law, ChinchillaLaw) else law


def log2(x: float) -> float:
    return math.log(x, 2)
