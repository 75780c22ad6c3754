"""How Kubernetes' ``resource.ParseQuantity`` represents a quantity string in memory.

What this module does: given a quantity as the API server writes it (``"100m"``, ``"1Gi"``, ``"2"``),
returns the fields the Go ``resource.Quantity`` struct holds after parsing it: the ``int64Amount``
(value and scale), the cached string ``s`` (set only when the parse found the string canonical) and the
``Format``. The pod-template hash prints these fields, so they must be exactly Go's.

Reimplemented from the behaviour of k8s.io/apimachinery v0.36.3 ``pkg/api/resource`` (``ParseQuantity``,
``parseQuantityString``, the suffixer): digits before and after a point, then a suffix (decimal SI,
binary SI or an ``e``/``E`` exponent); a number that fits 18 digits at a scale of at least nano is kept
as an int64 amount. Quantities Go keeps as an arbitrary-precision ``inf.Dec`` instead (more than 18
digits, finer than nano, large binary suffixes such as ``100Ti``) raise ``UnsupportedQuantity``.

What it must not do: arithmetic on quantities, or formatting them back to strings.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Final

__all__ = ["ParsedQuantity", "UnsupportedQuantity", "parse_quantity"]

DECIMAL_SI: Final = "DecimalSI"
BINARY_SI: Final = "BinarySI"
DECIMAL_EXPONENT: Final = "DecimalExponent"
_NANO: Final = -9
_MAX_INT64_FACTORS: Final = 18
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1

# suffix -> (base, exponent, format); the decimal table is consulted first, so "E" is 10^18.
_SUFFIXES: Final = {
    **{s: (10, e, DECIMAL_SI) for s, e in (("", 0), ("n", -9), ("u", -6), ("m", -3), ("k", 3))},
    **{s: (10, e, DECIMAL_SI) for s, e in (("M", 6), ("G", 9), ("T", 12), ("P", 15), ("E", 18))},
    **{s: (2, e, BINARY_SI) for s, e in (("Ki", 10), ("Mi", 20), ("Gi", 30), ("Ti", 40), ("Pi", 50))},
    "Ei": (2, 60, BINARY_SI),
}
# sign, integer digits, optional point and fraction digits, suffix (validated separately).
_SHAPE: Final = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?(.*)", re.ASCII | re.DOTALL)
_EXPONENT: Final = re.compile(r"[eE]([+-]?\d+)", re.ASCII)


class UnsupportedQuantity(ValueError):
    """The quantity is not representable as Go's int64 amount (or is not a valid quantity)."""


@dataclasses.dataclass(frozen=True)
class ParsedQuantity:
    value: int
    scale: int
    cached: str  # the struct's ``s`` field: "" unless the string was found canonical
    format: str


def parse_quantity(text: str) -> ParsedQuantity:
    if text == "0":
        return ParsedQuantity(0, 0, "0", DECIMAL_SI)
    sign, num, denom, suffix = _split(text)
    _base, exponent, fmt = _interpret(text, suffix)
    precision, scale, mantissa = _precision(fmt, exponent, num, denom)
    if precision < 0 or scale - len(denom) < _NANO:
        raise UnsupportedQuantity(f"quantity {text!r} is held as an inf.Dec by Go (too precise or too large)")
    scale -= len(denom)
    shifted = num + denom
    result = int(shifted) * mantissa
    if not _INT64_MIN <= result <= _INT64_MAX:
        raise UnsupportedQuantity(f"quantity {text!r} overflows int64 and is held as an inf.Dec by Go")
    if sign == "-":
        result = -result
    return ParsedQuantity(result, scale, text if _canonical(fmt, exponent, scale, shifted) else "", fmt)


def _split(text: str) -> tuple[str, str, str, str]:
    match = _SHAPE.fullmatch(text)
    if match is None or not text:
        raise UnsupportedQuantity(f"{text!r} is not a quantity")
    sign, digits, fraction, suffix = match.group(1), match.group(2), match.group(3), match.group(4)
    if fraction is None and not digits.strip("0") and not suffix:
        return sign, "0", "", ""  # all zeroes (Go returns before reading any suffix)
    num = digits.lstrip("0") or "0"
    return sign, num, fraction or "", suffix


def _interpret(text: str, suffix: str) -> tuple[int, int, str]:
    if suffix in _SUFFIXES:
        return _SUFFIXES[suffix]
    match = _EXPONENT.fullmatch(suffix)
    if match is None:
        raise UnsupportedQuantity(f"quantity {text!r} has an unknown suffix {suffix!r}")
    return 10, int(match.group(1)), DECIMAL_EXPONENT


def _precision(fmt: str, exponent: int, num: str, denom: str) -> tuple[int, int, int]:
    """Go's (precision, scale, mantissa): a negative precision sends the parse to inf.Dec."""
    if fmt != BINARY_SI:
        return _MAX_INT64_FACTORS - (len(num) + len(denom)), exponent, 1
    if exponent >= 0 and not denom:
        # Go computes int32(float32(exponent)*3/10); exponents are multiples of 10, so this is exact.
        return 15 - len(num) - exponent * 3 // 10 - 1, 0, 1 << exponent
    return -1, 0, 1


def _canonical(fmt: str, exponent: int, scale: int, shifted: str) -> bool:
    """Whether Go caches the input string as the quantity's canonical form."""
    value = int(shifted)
    if fmt == BINARY_SI:
        return exponent % 10 == 0 and value & 0x07 != 0
    return scale % 3 == 0 and not shifted.endswith("000") and shifted[0] != "0"
