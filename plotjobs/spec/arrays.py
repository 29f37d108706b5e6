"""Large numeric columns as numpy arrays: read and checked in bulk, with the first bad cell named.

A spec's data of more than ``LIST_POINTS`` points in all travels as arrays (float64 numbers,
datetime64[ms] dates) from the request to the drawing: a million points never become a million
Python floats after the request is parsed. Smaller data keeps the plain-list path and its messages.
"""

from __future__ import annotations

import datetime as dt
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from plotjobs.spec.base import SpecRuleError

# Up to this many points in all, series stay Python lists validated one value at a time (the old bound).
LIST_POINTS = 20_000
MAX_ABS_VALUE = 1e100
MIN_YEAR = 1000
MAX_YEAR = 8999
DATE_UNIT = "datetime64[ms]"
CATEGORIES_NOTE = f"category names on x are for up to {LIST_POINTS} points in all; give numbers or ISO dates"
_LOOKS_LIKE_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}")
_NUMBER_TYPES = frozenset({float, int})


def is_array(value: object) -> bool:
    """Whether ``value`` is a numpy array (the large-data form of a series field)."""
    return isinstance(value, np.ndarray)


def looks_like_date(text: str) -> bool:
    """Whether a string starts as an ISO date does (YYYY-MM-DD)."""
    return bool(_LOOKS_LIKE_DATE.match(text))


def _bad_number_message(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "Input should be a valid number"
    return f"must be finite and within ±{MAX_ABS_VALUE:g}"


def numbers(values: Sequence[Any] | np.ndarray, where: str) -> np.ndarray:
    """``values`` as a float64 array, every one finite and within ±1e100; SpecRuleError names the first bad one."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind not in "fiu":
            raise SpecRuleError(where, f"holds {values.dtype} values, not numbers")
        array = values.astype(np.float64, copy=False)
    else:
        kinds = set(map(type, values))
        if not kinds <= _NUMBER_TYPES:
            for position, value in enumerate(values):
                if type(value) not in _NUMBER_TYPES:
                    raise SpecRuleError(f"{where}.{position}", _bad_number_message(value))
        try:
            array = np.array(values, dtype=np.float64)
        except OverflowError:
            # An integer beyond float64: name it rather than the whole list.
            for position, value in enumerate(values):
                if abs(value) > MAX_ABS_VALUE:
                    raise SpecRuleError(f"{where}.{position}", _bad_number_message(value)) from None
            raise
    check_numbers(array, where)
    return array


def check_numbers(array: np.ndarray, where: str) -> None:
    """Every value finite and within ±1e100; SpecRuleError names the first that is not."""
    with np.errstate(invalid="ignore"):
        bad = ~(np.abs(array) <= MAX_ABS_VALUE)  # NaN compares false, so it is caught too
    if bad.any():
        position = int(np.argmax(bad))
        raise SpecRuleError(f"{where}.{position}", f"must be finite and within ±{MAX_ABS_VALUE:g}")


def parse_date(text: str, where: str) -> dt.datetime:
    """An ISO date or date-time as a naive UTC moment; SpecRuleError naming ``where`` when it is not one we draw."""
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        message = f"{text[:40]!r} is not an ISO date (YYYY-MM-DD or YYYY-MM-DDTHH:MM[:SS])"
        raise SpecRuleError(where, message) from None
    if moment.tzinfo is not None:
        try:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        except OverflowError:
            # The offset moves the moment past year 1 or 9999, which datetime cannot hold.
            raise SpecRuleError(where, f"{text[:40]!r} is outside the years {MIN_YEAR}..{MAX_YEAR}") from None
    if not MIN_YEAR <= moment.year <= MAX_YEAR:
        raise SpecRuleError(where, f"{text[:40]!r} is outside the years {MIN_YEAR}..{MAX_YEAR}")
    return moment


def _one_date(text: object, where: str) -> np.datetime64:
    if not isinstance(text, str):
        raise SpecRuleError(where, f"{text!r} is not an ISO date string")
    return np.datetime64(parse_date(text, where), "ms")


def dates(values: Sequence[Any] | np.ndarray, where: str) -> np.ndarray:
    """ISO dates or date-times as a datetime64[ms] array (offsets made UTC); SpecRuleError names the first bad one."""
    if isinstance(values, np.ndarray) and values.dtype.kind == "M":
        array = values.astype(DATE_UNIT)
    else:
        try:
            with warnings.catch_warnings():
                # numpy warns (and will refuse) on offsets; those take the slow, exact path below.
                warnings.simplefilter("error")
                if any(not isinstance(value, str) for value in values):
                    raise ValueError("not all strings")
                # numpy also reads "2024", "today" and "NaT": only what starts as an ISO date goes to it.
                if not all(map(_LOOKS_LIKE_DATE.match, values)):
                    raise ValueError("not all ISO dates")
                array = np.array(values, dtype=DATE_UNIT)
        except (ValueError, TypeError, DeprecationWarning, UserWarning):
            array = np.array([_one_date(value, f"{where}.{position}") for position, value in enumerate(values)])
            return array.astype(DATE_UNIT)
    check_years(array, where)
    return array


def check_years(array: np.ndarray, where: str) -> None:
    """Every date within the years matplotlib's axes can draw; SpecRuleError names the first that is not."""
    years = array.astype("datetime64[Y]").astype(np.int64) + 1970
    bad = np.isnat(array) | (years < MIN_YEAR) | (years > MAX_YEAR)
    if bad.any():
        position = int(np.argmax(bad))
        shown = str(array[position])
        raise SpecRuleError(f"{where}.{position}", f"{shown!r} is outside the years {MIN_YEAR}..{MAX_YEAR}")


def x_values(values: Sequence[Any] | np.ndarray, x_type: str, where: str) -> np.ndarray:
    """x of a large series: numbers (float64) or ISO dates (datetime64[ms]); categories stay for small data."""
    if isinstance(values, np.ndarray):
        if values.dtype.kind == "M":
            return dates(values, where)
        return numbers(values, where)
    first = values[0] if len(values) else 0
    if x_type == "date" or (x_type == "auto" and isinstance(first, str) and looks_like_date(first)):
        return dates(values, where)
    if x_type == "number" and any(isinstance(value, str) for value in values):
        raise SpecRuleError("x_type", "x_type is number but x holds strings")
    if x_type == "category" or isinstance(first, str):
        raise SpecRuleError(where, CATEGORIES_NOTE)
    return numbers(values, where)
