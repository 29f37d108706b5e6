"""What the job layer may ask of any generator's spec, and how validation failures are reported."""

from __future__ import annotations

import datetime as dt
from abc import abstractmethod
from typing import ClassVar, Self

from pydantic import BaseModel, ValidationError


class SpecRuleError(ValueError):
    """A rule across fields is broken; ``field`` is the dotted path of the input at fault."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


class GeneratorSpec(BaseModel):
    """Base of every generator's spec model: the few facts queueing, dedupe and metrics need."""

    generator_name: ClassVar[str]

    @property
    @abstractmethod
    def output_format(self) -> str:
        """The file format of the rendered bytes (``png``, ``svg``, ``pdf``, ...)."""

    @property
    @abstractmethod
    def content_type(self) -> str:
        """The media type of the rendered bytes."""

    @property
    def metric_label(self) -> str:
        """A short, bounded label for metrics and logs (never user text)."""
        return self.generator_name

    def is_reproducible(self) -> bool:
        """Whether rendering this spec twice gives the same bytes, so identical requests may share a render."""
        return False

    def pinned(self, today: dt.date) -> Self:
        """This spec with every implicit input (such as today's date) made explicit."""
        return self


def violations(error: ValidationError) -> list[tuple[str, str]]:
    """Each (field, message) of a failed spec validation, fields as dotted paths."""
    found = []
    for item in error.errors():
        cause = (item.get("ctx") or {}).get("error")
        if isinstance(cause, SpecRuleError):
            found.append((cause.field, cause.message))
        else:
            found.append((".".join(str(part) for part in item["loc"]) or "spec", item["msg"]))
    return found


def violations_text(error: ValidationError) -> str:
    """Every violation in one line: ``field: message; field: message``."""
    return "; ".join(f"{field}: {message}" for field, message in violations(error))
