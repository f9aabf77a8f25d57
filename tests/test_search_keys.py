"""Search keys fold Romanian spelling variants to one form."""

from __future__ import annotations

import pytest

from gis_core.search_keys import fold, search_key


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("Strada Ştefan cel Mare nr. 21", "str. ȘTEFAN  cel mare 21"),  # cedilla vs comma below
        ("Piața Unirii", "piata unirii"),
        ("Bulevardul 21 Decembrie 1989", "B-dul 21 Decembrie 1989"),
        ("Bulevardul Eroilor", "bd. Eroilor"),
        ("Calea Moților 12", "cal. motilor 12"),
        ("Strada Memorandumului 21", "str Memorandumului nr 21"),
    ],
)
def test_spelling_variants_share_a_key(first: str, second: str) -> None:
    assert search_key(first) == search_key(second)


def test_different_streets_keep_different_keys() -> None:
    assert search_key("Strada Horea 3") != search_key("Strada Horia 3")


def test_fold_keeps_words_and_digits() -> None:
    assert fold("  Țară   Ţară ") == "tara tara"
