"""CHECK constraint translation: the shapes pg_get_constraintdef() prints, and what is skipped."""

from __future__ import annotations

import pytest

from skillswap_backup.lib.quality.constraints import RangeRule, SetRule, translate_check


@pytest.mark.parametrize(
    ("definition", "rules"),
    [
        ("CHECK (((rating >= 1) AND (rating <= 5)))", [RangeRule("rating", 1, 5)]),
        ("CHECK ((rating >= 1))", [RangeRule("rating", 1, None)]),
        ("CHECK ((score BETWEEN 0 AND 10))", [RangeRule("score", 0, 10)]),
        ("CHECK ((1 <= n))", [RangeRule("n", 1, None)]),
        ("CHECK (((price > (0)::numeric) AND (price < (100.5)::numeric)))", [RangeRule("price", 0, 100.5, True, True)]),
        ("CHECK ((x >= '-1'::integer)) NOT VALID", [RangeRule("x", -1, None)]),
        ("CHECK ((x >= (- 1)))", [RangeRule("x", -1, None)]),
        ("CHECK (((rating)::numeric <= 5.0))", [RangeRule("rating", None, 5.0)]),
        ('CHECK (("Rating" <= 5))', [RangeRule("Rating", None, 5)]),
        ("CHECK ((qty = 3))", [RangeRule("qty", 3, 3)]),
        (
            "CHECK (((a >= 0) AND (b >= 0) AND (a <= 3)))",
            [RangeRule("a", 0, 3), RangeRule("b", 0, None)],
        ),
        (
            "CHECK ((status = ANY (ARRAY['pending'::text, 'accepted'::text])))",
            [SetRule("status", ("pending", "accepted"))],
        ),
        (
            "CHECK (((kind)::text = ANY ((ARRAY['a'::character varying, 'it''s'::character varying])::text[])))",
            [SetRule("kind", ("a", "it's"))],
        ),
        ("CHECK ((priority = ANY (ARRAY[1, 2, 3])))", [SetRule("priority", (1, 2, 3))]),
        ("CHECK ((kind = 'x'::text))", [SetRule("kind", ("x",))]),
    ],
)
def test_translated(definition, rules):
    result = translate_check("c", definition)
    assert result.skipped_reason == ""
    assert result.rules == rules


@pytest.mark.parametrize(
    ("definition", "reason"),
    [
        ("CHECK ((char_length(name) > 0))", "not a comparison of one column with a constant"),
        ("CHECK ((ends_at > starts_at))", "not a comparison of one column with a constant"),
        ("CHECK (((a > 0) OR (b > 0)))", "uses OR"),
        ("CHECK ((n <> 0))", "unsupported comparison '<>'"),
        ("CHECK ((d >= '2020-01-01'::date))", "compares with a non-numeric value"),
        ("CHECK ((x IS NOT NULL))", "not a comparison of one column with a constant"),
        ("CHECK ((score NOT BETWEEN 0 AND 10))", "uses NOT BETWEEN or BETWEEN SYMMETRIC"),
        ("CHECK ((tags = ANY (some_function())))", "= ANY over something other than an ARRAY literal"),
        ("UNIQUE (email)", "not a CHECK constraint"),
    ],
)
def test_skipped_with_a_reason(definition, reason):
    result = translate_check("c", definition)
    assert result.rules == []
    assert result.skipped_reason == reason
