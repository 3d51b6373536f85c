"""Which images stand out from their batch.

A robust z-score per metric: (value - median) / (1.4826 x MAD), flagged beyond 3.5
(Iglewicz and Hoaglin's rule), so one bad image cannot hide by dragging the mean
and spread towards itself. When more than half the values are equal (MAD 0) the
mean absolute deviation stands in. A value must also differ from the median by a
minimum that matters to a person (a ΔE of 3, half a percent of clipped pixels, ...),
so a batch of near-identical images does not flag noise. Fewer than 5 images:
no statistical flags (too few to know what is normal).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

import numpy as np

Side = Literal["high", "low", "both"]
THRESHOLD = 3.5
MIN_COUNT = 5


@dataclass(frozen=True)
class Rule:
    metric: str
    side: Side
    min_difference: float
    relative: bool = False  # min_difference as a share of the median
    label: str = ""


RULES = (
    Rule("colour_distance", "high", 3.0, label="colour far from the reference"),
    Rule("clipped_share", "high", 0.005, label="more clipped pixels than the rest"),
    Rule("sharpness", "low", 0.25, relative=True, label="softer than the rest"),
    Rule("margin_min", "both", 1.0, label="subject margin unlike the rest"),
    Rule("lightness", "both", 3.0, label="exposure unlike the rest"),
)


def robust_z(values: list[float]) -> tuple[float, float]:
    """Median and robust scale (0 when the values carry no spread at all)."""
    a = np.asarray(values, np.float64)
    med = float(np.median(a))
    mad = float(np.median(np.abs(a - med)))
    scale = 1.4826 * mad if mad > 0 else 1.2533 * float(np.mean(np.abs(a - med)))
    return med, scale


def flag(values: dict[str, float | None], rule: Rule) -> dict[str, dict[str, float | str]]:
    """key -> {metric, value, median, z, reason} for each key whose value is an outlier."""
    known = {k: v for k, v in values.items() if v is not None}
    if len(known) < MIN_COUNT:
        return {}
    med, scale = robust_z(list(known.values()))
    if scale == 0:
        return {}
    floor = rule.min_difference * abs(med) if rule.relative else rule.min_difference
    out: dict[str, dict[str, float | str]] = {}
    for key, v in known.items():
        z = (v - med) / scale
        if (rule.side == "high" and z <= 0) or (rule.side == "low" and z >= 0):
            continue
        if abs(z) > THRESHOLD and abs(v - med) >= floor:
            out[key] = {"metric": rule.metric, "value": round(v, 4), "median": round(med, 4),
                        "z": round(z, 2), "reason": rule.label}
    return out


def majority_flags(values: dict[str, object], metric: str, label: str
                   ) -> dict[str, dict[str, object]]:
    """Flags for values that differ from the most common one (output size, depth)."""
    if len(values) < 2:
        return {}
    common, count = Counter(values.values()).most_common(1)[0]
    if count <= len(values) / 2:
        return {}
    return {k: {"metric": metric, "value": v, "expected": common, "reason": label}
            for k, v in values.items() if v != common}
