"""parse_quantity: the fields Go's resource.ParseQuantity leaves in a Quantity (apimachinery v0.36.3)."""

from __future__ import annotations

import pytest

from graylane.api.quantity import ParsedQuantity, UnsupportedQuantity, parse_quantity


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0", ParsedQuantity(0, 0, "0", "DecimalSI")),
        ("100m", ParsedQuantity(100, -3, "100m", "DecimalSI")),
        ("1", ParsedQuantity(1, 0, "1", "DecimalSI")),
        ("1500m", ParsedQuantity(1500, -3, "1500m", "DecimalSI")),
        # Trailing "000" or a leading zero is not canonical: the string is not cached.
        ("1000m", ParsedQuantity(1000, -3, "", "DecimalSI")),
        ("0.5", ParsedQuantity(5, -1, "", "DecimalSI")),
        ("2k", ParsedQuantity(2, 3, "2k", "DecimalSI")),
        ("129M", ParsedQuantity(129, 6, "129M", "DecimalSI")),
        ("100u", ParsedQuantity(100, -6, "100u", "DecimalSI")),
        ("1e3", ParsedQuantity(1, 3, "1e3", "DecimalExponent")),
        ("12e6", ParsedQuantity(12, 6, "12e6", "DecimalExponent")),
        # Binary: the amount is in bytes; cached only when the number is not a multiple of 8.
        ("1Gi", ParsedQuantity(2**30, 0, "1Gi", "BinarySI")),
        ("8Gi", ParsedQuantity(8 * 2**30, 0, "", "BinarySI")),
        ("1536Mi", ParsedQuantity(1536 * 2**20, 0, "", "BinarySI")),
        ("1Ti", ParsedQuantity(2**40, 0, "1Ti", "BinarySI")),
        ("-5", ParsedQuantity(-5, 0, "-5", "DecimalSI")),
    ],
)
def test_parse_matches_go(text: str, expected: ParsedQuantity) -> None:
    assert parse_quantity(text) == expected


@pytest.mark.parametrize(
    "text", ["1.5Gi", "100Ti", "1Pi", "1Ei", "0.1n", "1234567890123456789", "", "1x", "12e"]
)
def test_inf_dec_and_invalid_are_refused(text: str) -> None:
    with pytest.raises(UnsupportedQuantity):
        parse_quantity(text)
