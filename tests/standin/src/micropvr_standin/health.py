"""The load score behind ``is_alive``.

Each measured load component is a ratio of its configured maximum:

* sessions: ``session_count / score-max-sessions`` (always);
* CPU: ``1-minute load average / score-max-cpu-la1`` (1.10+, only when that key is > 0).

``score = 100 * max(ratios)`` (rounded to 2 decimals).  ``is_alive`` is false when the score
passes ``score-max-score`` or any component passes 80 % of its maximum (``ratio > 0.8``).

The bad release 1.10.1 (``Release.broken_score``) adds ``10 * score-max-score`` to the score, so
it always reports ``is_alive: false`` while serving everything else normally.
"""

from __future__ import annotations

from typing import Any

from .versioninfo import Release

COMPONENT_LIMIT = 0.8


def compute(session_count: int, cfg: dict[str, Any], release: Release,
            load_avg_1: float | None = None) -> dict[str, Any]:
    ratios = {"sessions": session_count / cfg["score-max-sessions"]}
    max_la1 = cfg.get("score-max-cpu-la1", 0) or 0
    if "score-max-cpu-la1" in release.extra_config_keys and max_la1 > 0 and load_avg_1 is not None:
        ratios["cpu_la1"] = load_avg_1 / max_la1
    max_score = float(cfg["score-max-score"])
    score = 100.0 * max(ratios.values())
    if release.broken_score:
        score += 10.0 * max_score
    score = round(score, 2)
    alive = score <= max_score and all(r <= COMPONENT_LIMIT for r in ratios.values())
    return {"is_alive": alive, "score": score, "session_count": session_count}
