"""Write the mutation report (docs/mutation.md) from mutmut's results in mutants/.

Scores count a mutant as killed when a test failed or timed out on it, or mypy --strict
refused it (the test command runs mypy too). Equivalent mutants, which no test can kill
because they do not change behaviour, are listed with the reason in scripts/mutation_notes.toml
and left out of the score; survivors explained there still count against it.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTES = ROOT / "scripts" / "mutation_notes.toml"
# The modules whose logic runs in-process: the target applies to them; the others are reported.
TARGET = 0.90
REPORTED_ONLY = frozenset(
    {"plotjobs/worker/recovery.py", "plotjobs/worker/supervisor.py", "plotjobs/worker/render_worker.py"}
)

KILLED = {1, 3, 36, 37, 24, -24, 152, 255}
SURVIVED = 0
NOT_RUN = {None, 2, 5, 33, 34}


@dataclass
class ModuleScore:
    """What mutmut found for one module."""

    path: str
    killed: list[str] = field(default_factory=list)
    survived: list[str] = field(default_factory=list)
    not_run: list[str] = field(default_factory=list)
    equivalent: list[str] = field(default_factory=list)
    explained: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.killed) + len(self.survived) + len(self.not_run) + len(self.equivalent) + len(self.explained)

    @property
    def score(self) -> float:
        counted = len(self.killed) + len(self.survived) + len(self.not_run) + len(self.explained)
        return len(self.killed) / counted if counted else 1.0


def configured_modules() -> list[str]:
    """The modules pyproject.toml names for mutation."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["mutmut"]
    return list(config["only_mutate"])


def load_notes() -> tuple[dict[str, str], dict[str, str]]:
    """(equivalent mutants, explained survivors), each name -> why."""
    notes = tomllib.loads(NOTES.read_text())
    return dict(notes.get("equivalent", {})), dict(notes.get("explained", {}))


def scores(modules: list[str], equivalent: dict[str, str], explained: dict[str, str]) -> list[ModuleScore]:
    """Each module's mutants, sorted by outcome."""
    found = []
    for path in modules:
        score = ModuleScore(path)
        meta_path = ROOT / "mutants" / f"{path}.meta"
        if meta_path.exists():
            exit_codes: dict[str, int | None] = json.loads(meta_path.read_text())["exit_code_by_key"]
            for name, code in sorted(exit_codes.items()):
                if name in equivalent:
                    score.equivalent.append(name)
                elif code in KILLED:
                    score.killed.append(name)
                elif name in explained and code == SURVIVED:
                    score.explained.append(name)
                elif code == SURVIVED:
                    score.survived.append(name)
                else:
                    score.not_run.append(name)
        found.append(score)
    return found


def diff_of(name: str) -> str:
    """mutmut's diff of one mutant."""
    mutmut = str(Path(sys.executable).parent / "mutmut")
    shown = subprocess.run([mutmut, "show", name], capture_output=True, text=True, check=False, cwd=ROOT)
    return "\n".join(line for line in shown.stdout.splitlines() if line[:1] in "+-" and line[:3] not in ("---", "+++"))


def render(found: list[ModuleScore], equivalent: dict[str, str], explained: dict[str, str]) -> str:
    """The report as Markdown."""
    lines = [
        "# Mutation testing",
        "",
        "`scripts/mutation.sh` runs [mutmut](https://mutmut.readthedocs.io/) over the modules that carry the",
        "guarantees (`[tool.mutmut]` in `pyproject.toml`) and rewrites this page; `scripts/mutation.sh limits`",
        "runs one module. It is slow, so CI does not run it. A mutant counts as killed when a test fails or",
        "times out on it, or `mypy --strict` (part of the test command) refuses it. Equivalent mutants",
        "(they cannot change behaviour) are left out of the score; they and the survivors whose behaviour",
        "only the system tests reach are explained below (`scripts/mutation_notes.toml`).",
        "",
        f"Last run: {dt.datetime.now(dt.UTC):%Y-%m-%d}. Target: {TARGET:.0%} killed on the modules whose logic",
        "runs in-process. Reported without a target: the sweep's Redis work (its decisions are",
        "`worker/policy.py`), the supervisor's process handling and the render worker.",
        "",
        "| module | mutants | killed | survived | not run | equivalent | explained | score |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for score in found:
        name = score.path.removeprefix("plotjobs/")
        mark = " (reported)" if score.path in REPORTED_ONLY else ""
        lines.append(
            f"| `{name}`{mark} | {score.total} | {len(score.killed)} | {len(score.survived)} | {len(score.not_run)} "
            f"| {len(score.equivalent)} | {len(score.explained)} | {score.score:.1%} |"
        )
    for title, kind, reasons in (
        ("Equivalent mutants", "equivalent", equivalent),
        ("Survivors explained", "explained", explained),
    ):
        lines += ["", f"## {title}", ""]
        for score in found:
            for name in getattr(score, kind):
                diff = [f"  {line}" for line in diff_of(name).splitlines()]
                lines += [f"- `{name}`: {reasons[name]}", "", "  ```diff", *diff, "  ```"]
    survivors = [name for score in found for name in score.survived]
    lines += ["", "## Survivors not yet explained", ""]
    lines += [f"- `{name}`" for name in survivors] or ["None."]
    not_run = [name for score in found for name in score.not_run]
    lines += [
        "",
        "## Not run",
        "",
        "Mutants the last run did not finish (mutmut timed them out before a verdict, or the run was cut):",
        "",
    ]
    lines += [f"- `{name}`" for name in not_run] or ["None."]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """Write the report to argv[1] (default: print it); exit 1 if an in-process module is under target."""
    equivalent, explained = load_notes()
    found = scores(configured_modules(), equivalent, explained)
    report = render(found, equivalent, explained)
    if len(argv) > 1:
        Path(argv[1]).write_text(report)
    else:
        sys.stdout.write(report)
    short = [s.path for s in found if s.path not in REPORTED_ONLY and s.total and s.score < TARGET]
    for score in found:
        print(f"{score.path}: {len(score.killed)}/{score.total} killed, score {score.score:.1%}", file=sys.stderr)
    if short:
        print(f"under {TARGET:.0%}: {', '.join(short)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
