"""What an import did, in one structure: printed on the terminal, saved as JSON, kept in the run.

A GIS clerk trusts an importer that says exactly what happened to every feature, so the
report carries the counts (read, inserted, changed, closed, unchanged, repaired,
rejected), every finding with the feature and field it concerns, and the decisions taken
on the user's behalf (CRS, axis order, field mapping) as notes. ``--strict`` fails on any
finding; notes never fail an import.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

COUNT_NAMES = ("read", "inserted", "changed", "closed", "unchanged", "repaired", "rejected")
# Findings kept in full per code; beyond that only counted (a 1 000 000-feature file with
# one systematic defect must not produce a report of a million lines).
KEPT_PER_CODE = 200
SHOWN_PER_CODE = 5


@dataclass(frozen=True)
class Finding:
    """One problem found in the input, named so that the user can find it in the file."""

    code: str
    message: str
    feature: str | None = None
    field: str | None = None
    rejected: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "code": self.code,
            "feature": self.feature,
            "field": self.field,
            "rejected": self.rejected,
            "message": self.message,
        }

    def line(self) -> str:
        where = ", ".join(part for part in (self.feature, self.field) if part)
        return f"{where}: {self.message}" if where else self.message


@dataclass
class ImportReport:
    """Counts, findings and notes of one import (any kind: cadastre, zoning, ...)."""

    kind: str
    sources: list[str]
    counts: Counter[str] = field(default_factory=Counter)
    findings: list[Finding] = field(default_factory=list)
    finding_counts: Counter[str] = field(default_factory=Counter)
    rejection_reasons: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    run_id: int | None = None
    status: str = "running"
    dry_run: bool = False

    def add(self, finding: Finding) -> None:
        """Record a finding; rejections also count towards ``rejected`` with their reason."""
        self.finding_counts[finding.code] += 1
        if finding.rejected:
            self.counts["rejected"] += 1
            self.rejection_reasons[finding.code] += 1
        if self.finding_counts[finding.code] <= KEPT_PER_CODE:
            self.findings.append(finding)

    def note(self, text: str) -> None:
        self.notes.append(text)

    @property
    def finding_total(self) -> int:
        return sum(self.finding_counts.values())

    @property
    def nothing_changed(self) -> bool:
        return not any(self.counts[name] for name in ("inserted", "changed", "closed"))

    def count_dict(self) -> dict[str, int]:
        extra = {k: v for k, v in self.counts.items() if k not in COUNT_NAMES}
        return {**{name: int(self.counts[name]) for name in COUNT_NAMES}, **extra}

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "run_id": self.run_id,
            "status": self.status,
            "dry_run": self.dry_run,
            "sources": self.sources,
            "counts": self.count_dict(),
            "nothing_changed": self.nothing_changed,
            "rejection_reasons": dict(self.rejection_reasons),
            "finding_counts": dict(self.finding_counts),
            "findings": [finding.as_dict() for finding in self.findings],
            "notes": self.notes,
            **self.details,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ImportReport:
        """A report as stored in ``core.import_run.report`` (for ``urbangis import show``)."""
        known = {
            "kind", "run_id", "status", "dry_run", "sources", "counts", "nothing_changed",
            "rejection_reasons", "finding_counts", "findings", "notes",
        }  # fmt: skip
        report = cls(
            kind=str(data.get("kind", "?")),
            sources=[str(s) for s in data.get("sources", [])],
            counts=Counter({k: int(v) for k, v in dict(data.get("counts", {})).items()}),
            findings=[
                Finding(
                    str(f.get("code")),
                    str(f.get("message")),
                    f.get("feature"),
                    f.get("field"),
                    bool(f.get("rejected")),
                )
                for f in data.get("findings", [])
            ],
            finding_counts=Counter(dict(data.get("finding_counts", {}))),
            rejection_reasons=Counter(dict(data.get("rejection_reasons", {}))),
            notes=[str(n) for n in data.get("notes", [])],
            details={k: v for k, v in data.items() if k not in known},
            run_id=data.get("run_id"),
            status=str(data.get("status", "?")),
            dry_run=bool(data.get("dry_run")),
        )
        return report

    def write_json(self, path: Path) -> None:
        path.write_bytes(orjson.dumps(self.as_dict(), option=orjson.OPT_INDENT_2, default=str))

    def summary_lines(self) -> list[str]:
        """The terminal summary: counts, then findings grouped by kind with a few examples."""
        counts = self.count_dict()
        head = f"import {self.kind}{' (dry run: nothing written)' if self.dry_run else ''}: "
        lines = [head + ", ".join(self.sources)]
        lines.append("  " + " · ".join(f"{name} {counts[name]}" for name in COUNT_NAMES))
        if self.nothing_changed and counts["read"] and not self.dry_run:
            lines.append("  nothing changed: the data already matches this input")
        if self.rejection_reasons:
            reasons = ", ".join(f"{code} {n}" for code, n in self.rejection_reasons.most_common())
            lines.append(f"  rejected because: {reasons}")
        lines.extend(f"  note: {text}" for text in self.notes)
        for code, total in self.finding_counts.most_common():
            lines.append(f"  finding {code}: {total}")
            examples = [f for f in self.findings if f.code == code][:SHOWN_PER_CODE]
            lines.extend(f"    - {example.line()}" for example in examples)
            if total > len(examples):
                lines.append(f"    … {total - len(examples)} more (see the JSON report)")
        if "error" in self.details:
            lines.append(f"  error: {self.details['error']}")
        if self.run_id is not None:
            lines.append(f"  run {self.run_id}: {self.status}")
        elif self.status in ("failed", "dry_run"):
            lines.append(f"  {self.status.replace('_', ' ')}: the database was not changed")
        return lines


def merge_counts(report: ImportReport, counts: dict[str, int]) -> None:
    """Add the merge's counts (inserted, changed, ...) to the report."""
    for name, value in counts.items():
        report.counts[name] += int(value)
