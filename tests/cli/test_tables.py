"""The shared table helpers: estimates rounded to what their interval resolves, columns aligned."""

from __future__ import annotations

from sparsinglaw.cli.common import aligned_table, format_estimate, interval_decimals, key_value_table


def test_estimate_rounded_to_its_interval():
    assert format_estimate(0.15202005296336635, (0.1412, 0.1634)) == ("0.152", "[0.141, 0.163]")
    assert format_estimate(0.5, (0.42, 0.58)) == ("0.50", "[0.42, 0.58]")
    assert format_estimate(1.004683, (1.0031, 1.0062)) == ("1.0047", "[1.0031, 1.0062]")
    assert format_estimate(0.15202005296336635) == ("0.152", "-")  # no interval: 4 significant digits
    assert interval_decimals(0.3, 0.3) is None and interval_decimals(None, 1.0) is None


def test_aligned_table_and_key_values():
    table = aligned_table(["name", "value", "interval"],
                          [["a", *format_estimate(0.123456, (0.1, 0.15))], ["longer name", 2.0, "-"]])
    lines = table.splitlines()
    assert len({len(line) for line in lines if not line.startswith("-")}) == 1
    assert lines[2].startswith("a ") and lines[2].endswith("[0.100, 0.150]") and lines[3].endswith("  -")
    assert key_value_table({"cett": 0.15202005296336635, "measured": 3, "nested": {}}) == "cett      0.152\nmeasured  3"
