"""Sentiment of short posts, offline, for German and English.

English: VADER (Hutto & Gilbert 2014, ICWSM), whose lexicon ships in the ``vaderSentiment`` wheel.
German: the SentiWS word lists (Remus, Quasthoff & Heyer 2010, LREC; licence CC BY-NC-SA 3.0)
as shipped inside the ``gersent`` wheel, read by path, with a small supplement written for xrm
(``de_sentiment_supplement.csv``).  German posts are scored with VADER's rules: negation within
three words flips and damps a word (x -0.74), intensifiers scale it, each '!' adds emphasis, and
the sum is normalised as VADER does, s / sqrt(s² + 15) (Hutto & Gilbert 2014, section 3.3).

    >>> from xrm.network import sentiment
    >>> sentiment("Der Kaffee ist großartig!", "de") > 0.3, sentiment("not happy at all", "en") < 0
    (True, True)
"""

from __future__ import annotations

import csv
import importlib.util
import json
import math
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

from xrm.exceptions import EngineUnavailable

__all__ = ["detect_language", "sentiment"]

_ALPHA = 15.0
_SCALE = 4.0  # SentiWS weights lie in -1 .. 1; VADER's in -4 .. 4
_N_SCALAR = -0.74
_NEGATORS = frozenset(
    {
        "nicht",
        "kein",
        "keine",
        "keinen",
        "keinem",
        "keiner",
        "keines",
        "nie",
        "niemals",
        "nichts",
        "ohne",
        "weder",
        "noch_nie",
    }
)
_BOOSTERS = {
    "sehr": 1.3,
    "total": 1.3,
    "extrem": 1.4,
    "echt": 1.2,
    "wirklich": 1.2,
    "richtig": 1.2,
    "absolut": 1.3,
    "besonders": 1.2,
    "einfach": 1.1,
    "ziemlich": 1.1,
    "etwas": 0.8,
    "kaum": 0.6,
}
_TOKEN = re.compile(r"[\wäöüÄÖÜß]+|[.!?;]")
_DE_WORDS_TEXT = (
    "der die das und ist nicht ich mit von bei mal sehr auch ein eine einen für schon wieder  "
    "mein meine seit hat heute wie was wir uns sie den dem des zu im auf "
)
_DE_WORDS = frozenset(_DE_WORDS_TEXT.split())
_EN_WORDS_TEXT = (
    "the and is not i with from my for this that just still same here great love loving best  "
    "happy waiting it of to in at be you your so "
)
_EN_WORDS = frozenset(_EN_WORDS_TEXT.split())


@cache
def _german_lexicon() -> dict[str, float]:
    spec = importlib.util.find_spec("gersent")
    if spec is None or not spec.submodule_search_locations:
        raise EngineUnavailable("German sentiment needs the SentiWS word lists: pip install gersent")
    # Read the data files by path: importing gersent's module is not needed (and warns on 3.11).
    base = Path(next(iter(spec.submodule_search_locations))) / "wordlists" / "de"
    lex: dict[str, float] = {}
    for name in ("positive.json", "negative.json"):
        with (base / name).open(encoding="utf-8") as f:
            for word, weight in json.load(f).items():
                lex[word] = float(weight)
    text = resources.files("xrm.network").joinpath("de_sentiment_supplement.csv").read_text(encoding="utf-8")
    rows = csv.DictReader(line for line in text.splitlines() if not line.startswith("#"))
    for row in rows:
        lex[row["word"]] = float(row["weight"])
    return lex


@cache
def _vader() -> Any:
    try:
        from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer
    except ImportError:
        raise EngineUnavailable("English sentiment needs VADER: pip install vaderSentiment") from None
    return SentimentIntensityAnalyzer()


def _lookup(lex: dict[str, float], word: str) -> float | None:
    for form in (word, word.lower(), word.capitalize()):
        if form in lex:
            return lex[form]
    return None


def _german(text: str) -> float:
    lex = _german_lexicon()
    tokens = _TOKEN.findall(text)
    total = 0.0
    for i, tok in enumerate(tokens):
        weight = _lookup(lex, tok)
        if weight is None or tok.lower() in _NEGATORS:
            continue
        value = weight * _SCALE
        # look back within the sentence: negators flip, boosters scale
        for j in range(i - 1, max(i - 4, -1), -1):
            prev = tokens[j].lower()
            if prev in ".!?;":
                break
            if prev in _NEGATORS:
                value *= _N_SCALAR
            elif prev in _BOOSTERS and j == i - 1:
                value *= _BOOSTERS[prev]
        total += value
    bangs = min(text.count("!"), 4) * 0.292
    if total > 0:
        total += bangs
    elif total < 0:
        total -= bangs
    return total / math.sqrt(total * total + _ALPHA)


def detect_language(text: str, default: str = "de") -> str:
    """'de' or 'en' by function words and German letters; ``default`` when undecided."""
    words = [w.lower() for w in _TOKEN.findall(text)]
    de = sum(w in _DE_WORDS for w in words) + sum(ch in "äöüßÄÖÜ" for ch in text)
    en = sum(w in _EN_WORDS for w in words)
    if de == en:
        return default
    return "de" if de > en else "en"


def sentiment(text: str, lang: str | None = None) -> float:
    """Compound sentiment in -1 .. 1 (> 0.05 positive, < -0.05 negative, as VADER reads it)."""
    language = (lang or detect_language(text)).lower()[:2]
    if language == "de":
        return round(_german(text), 4)
    return round(float(_vader().polarity_scores(text)["compound"]), 4)
