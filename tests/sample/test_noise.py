"""The text distortions and id scrambling the sample's noise is made of."""

from __future__ import annotations

import numpy as np

from xrm.sample._noise import ascii_fold, email_variant, phone_variant, street_variant, transliterate, typo
from xrm.sample._people import UniqueNames, scramble


def test_transliteration_and_folding():
    assert transliterate("Weiß-Müller") == "Weiss-Mueller"
    assert ascii_fold("Öztürk Groß") == "oeztuerkgross"


def test_typo_changes_a_word_but_keeps_its_first_letter():
    rng = np.random.default_rng(0)
    words = [typo("Katharina", rng) for _ in range(200)]
    assert all(w != "Katharina" and w[0] == "K" and abs(len(w) - 9) <= 1 for w in words)


def test_street_and_email_variants():
    rng = np.random.default_rng(0)
    variants = {street_variant("Goethestraße", rng) for _ in range(50)}
    assert variants == {"Goethestr.", "Goethestrasse"}
    assert email_variant("a.b@web.de", 1) == "A.B@WEB.DE" and email_variant("a@b.de", 3) == " a@b.de "


def test_phone_formats_are_one_number():
    digits = {"".join(ch for ch in phone_variant("30", "1234567", k) if ch.isdigit()) for k in range(8)}
    assert {d.removeprefix("0049").removeprefix("49").removeprefix("0") for d in digits} == {"301234567"}


def test_scramble_is_a_permutation_and_names_are_unique():
    x = scramble(np.arange(10**6), 6)
    assert (np.sort(x) == np.arange(10**6)).all() and (x[:10] != np.arange(10)).any()
    names, rng = UniqueNames(), np.random.default_rng(1)
    got = names.claim(["hans.mueller@web.de"] * 3, rng) + names.claim(["hans.mueller@web.de", "@hans"], rng)
    got += names.claim(["@hans"], rng, "_")
    assert len(set(got)) == 6 and got[0] == "hans.mueller@web.de" and got[4] == "@hans"
    assert got[5].startswith("@hans_") and all(g.endswith("@web.de") for g in got[:4])
