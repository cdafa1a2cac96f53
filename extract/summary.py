"""The closing summary of an extract/import run, shared by the CLI, the demo and the DAGs."""

from __future__ import annotations

from dataclasses import dataclass, field

from extract.load import LoadStats


@dataclass
class RunSummary:
    run_id: str = ""
    fetched: int = 0
    written_to_lake: int = 0
    load: LoadStats = field(default_factory=LoadStats)
    dropped_forming: int = 0
    duplicates_collapsed: int = 0
    violations: dict[str, int] = field(default_factory=dict)
    requests: int = 0
    throttled: int = 0  # 429/418 responses seen
    retries: int = 0
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)  # one clear line per failed symbol/file
    revisions: list[str] = field(default_factory=list)  # one line per stored row revised

    def add_violations(self, counts: dict[str, int]) -> None:
        for name, n in counts.items():
            self.violations[name] = self.violations.get(name, 0) + n

    @property
    def violation_count(self) -> int:
        return sum(self.violations.values())

    def lines(self) -> list[str]:
        violations = (
            f"{self.violation_count} ("
            + ", ".join(f"{k} {v}" for k, v in sorted(self.violations.items()))
            + ")"
            if self.violations
            else "0"
        )
        rows = [
            ("run", self.run_id or "-"),
            ("rows fetched", f"{self.fetched:,}"),
            ("written to lake", f"{self.written_to_lake:,}"),
            ("loaded (new)", f"{self.load.inserted:,}"),
            ("revised", f"{self.load.revised:,}"),
            ("unchanged", f"{self.load.unchanged:,}"),
            ("dropped as still forming", f"{self.dropped_forming:,}"),
            ("duplicates collapsed", f"{self.duplicates_collapsed:,}"),
            ("invariant violations (kept)", violations),
            ("requests", f"{self.requests:,}"),
            ("429/418 seen", f"{self.throttled:,}"),
            ("retries", f"{self.retries:,}"),
            ("seconds", f"{self.seconds:.1f}"),
        ]
        out = [f"  {name:<28} {value}" for name, value in rows]
        out += [f"  revised: {line}" for line in self.revisions]
        out += [f"  FAILED: {line}" for line in self.failures]
        return out
