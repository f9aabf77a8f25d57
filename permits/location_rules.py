"""Judging a location: is a stated use allowed in a zone, and what the summary verdict is.

Both the portal's location check and the clerks' validation ask whether a purpose such
as "construire locuință" falls under a UTR's allowed, conditional or forbidden uses. The
RLU writes uses as free Romanian text, so the comparison is on word stems (folded, the
first letters of each meaningful word: "locuință" and "locuințe" meet at "locuin").
When nothing matches the answer is ``unknown``, never a guess.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gis_core.search_keys import fold

STEM = 5
MIN_WORD = 4
# Words that say what is being done, not what the land is used for.
_STOP = frozenset(
    {
        "construire",
        "constructie",
        "constructii",
        "edificare",
        "realizare",
        "amenajare",
        "extindere",
        "pentru",
        "unei",
        "unui",
        "noua",
        "nou",
        "existenta",
        "existent",
        "si",
        "sau",
        "cele",
        "care",
        "aferente",
        "aferenta",
        "maximum",
        "minimum",
        "zona",
        "zonei",
    }
)
_WORD = re.compile(r"[a-z0-9]+")
# Shares below this are digitising slivers along zone edges, not a zone the site is in.
MARGINAL_SHARE = 0.005
SEVERITY_ORDER = {"blocked": 2, "attention": 1, "info": 0}


@dataclass(frozen=True)
class UseMatch:
    """How a purpose relates to one zone's uses."""

    category: str  # allowed | conditional | forbidden | ambiguous | unknown
    matched: str | None = None


def stems(text: str) -> frozenset[str]:
    """The meaningful word stems of a text (folded, no stop words)."""
    words = _WORD.findall(fold(text))
    return frozenset(w[:STEM] for w in words if len(w) >= MIN_WORD and w not in _STOP)


def classify_use(
    purpose: str | None,
    allowed: Sequence[str] | None,
    conditional: Sequence[str] | None,
    forbidden: Sequence[str] | None,
) -> UseMatch:
    """The category whose use text is most like the purpose (Jaccard on word stems).

    When categories tie ("locuință" is as close to "locuințe individuale", allowed, as
    to "locuințe colective", forbidden) the answer is ``ambiguous``: a clerk must read
    the regulation, and the portal must not refuse on a guess.
    """
    wanted = stems(purpose or "")
    if not wanted:
        return UseMatch("unknown")
    best: dict[str, tuple[float, str]] = {}
    for category, uses in (
        ("allowed", allowed),
        ("conditional", conditional),
        ("forbidden", forbidden),
    ):
        for use in uses or ():
            have = stems(use)
            common = wanted & have
            if not common:
                continue
            score = len(common) / len(wanted | have)
            if category not in best or score > best[category][0]:
                best[category] = (score, use)
    if not best:
        return UseMatch("unknown")
    top = max(score for score, _ in best.values())
    leaders = [category for category, (score, _) in best.items() if score == top]
    if len(leaders) > 1:
        return UseMatch("ambiguous", "; ".join(best[c][1] for c in leaders))
    return UseMatch(leaders[0], best[leaders[0]][1])


def reason(code: str, severity: str, message: str, **details: Any) -> dict[str, Any]:
    """One reason of a verdict: a stable code for programs, a sentence for people."""
    item: dict[str, Any] = {"code": code, "severity": severity, "message": message}
    item.update({k: v for k, v in details.items() if v is not None})
    return item


def verdict_of(reasons: Sequence[dict[str, Any]]) -> str:
    """``blocked`` if any reason blocks, ``attention`` if any needs a look, else ``ok``."""
    worst = max((SEVERITY_ORDER[r["severity"]] for r in reasons), default=0)
    return {2: "blocked", 1: "attention", 0: "ok"}[worst]


def inside_label(share: float | None) -> str:
    """``inside``/``partly``/``outside`` for a share (a hair's breadth counts as inside)."""
    if share is None:
        return "unknown"
    if share >= 0.999:
        return "inside"
    if share <= 0.001:
        return "outside"
    return "partly"
