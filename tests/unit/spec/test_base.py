"""How spec validation failures are reported: one (field, message) per violation, rule errors by their field."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, ValidationError, model_validator

from plotjobs.spec.base import SpecRuleError, violations, violations_text


class Pair(BaseModel):
    low: int
    high: int

    @model_validator(mode="after")
    def _ordered(self) -> Pair:
        if self.low > self.high:
            raise SpecRuleError("high", "must not be below low")
        return self


class Outer(BaseModel):
    pair: Pair


def test_a_rule_error_is_reported_at_its_own_field() -> None:
    with pytest.raises(ValidationError) as caught:
        Pair(low=3, high=1)
    assert violations(caught.value) == [("high", "must not be below low")]
    assert violations_text(caught.value) == "high: must not be below low"


def test_type_errors_are_reported_at_their_dotted_path() -> None:
    with pytest.raises(ValidationError) as caught:
        Outer.model_validate({"pair": {"low": "x"}})
    found = violations(caught.value)
    assert [field for field, _ in found] == ["pair.low", "pair.high"]
    assert violations_text(caught.value) == "; ".join(f"{field}: {message}" for field, message in found)
