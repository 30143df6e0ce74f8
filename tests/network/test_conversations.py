"""Posts in, conversation relationships and the conversation report out."""

from __future__ import annotations

import json
from pathlib import Path

from xrm.network import conversation_report, derive_relationships, key_phrases, load_posts

POSTS = [
    {
        "post_id": "tw-1",
        "author_handle": "@Anna_K",
        "platform": "twitter",
        "lang": "de",
        "text": "Der Espresso von @kaffeekorb ist einfach großartig!",
        "mentions": ["@kaffeekorb"],
        "reply_to": None,
        "timestamp": "2024-03-01T10:00:00Z",
    },
    {
        "post_id": "tw-2",
        "author_handle": "@ben",
        "platform": "twitter",
        "text": "@anna_k stimme zu, der Espresso ist großartig",
        "reply_to": "tw-1",
        "timestamp": "2024-03-01T11:00:00Z",
    },
    {
        "post_id": "tw-3",
        "author_handle": "@cara",
        "platform": "twitter",
        "text": "@kaffeekorb still waiting for my refund... not happy",
        "mentions": ["@kaffeekorb"],
        "timestamp": "2024-03-09T10:00:00Z",
    },
    {
        "post_id": "tw-4",
        "author_handle": "@kaffeekorb",
        "platform": "twitter",
        "text": "@cara Das tut uns leid! Bitte schreiben Sie uns.",
        "reply_to": "tw-3",
        "timestamp": "2024-03-09T12:00:00Z",
    },
    {
        "post_id": "tw-5",
        "author_handle": "@dan",
        "platform": "twitter",
        "text": "@anna_k totally agree, their espresso is great",
        "reply_to": "tw-1",
        "timestamp": "2024-03-10T12:00:00Z",
    },
]


def _write(tmp_path: Path, rows: list[dict], extra: str = "") -> Path:
    f = tmp_path / "posts.jsonl"
    f.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + extra, encoding="utf-8")
    return f


def test_posts_load_with_language_sentiment_and_rejects(store, tmp_path: Path):
    bad = (
        json.dumps(
            {
                "post_id": "tw-9",
                "author_handle": "@x",
                "platform": "twitter",
                "text": "hi",
                "timestamp": "yesterday",
            }
        )
        + "\n"
    )
    report = load_posts(store, _write(tmp_path, POSTS, bad))
    assert (report.rows_loaded, report.rows_rejected) == (5, 1)
    assert "'timestamp' = 'yesterday'" in report.problems[0]
    rows = dict(store.sql("SELECT post_id, sentiment FROM posts").fetchall())
    assert rows["tw-1"] > 0.3 and rows["tw-3"] < -0.2
    langs = dict(store.sql("SELECT post_id, lang FROM posts").fetchall())
    assert langs["tw-3"] == "en" and langs["tw-2"] == "de"
    # mentions come from the text when the row has none; handles are lower-case with '@'
    assert store.sql("SELECT mentions FROM posts WHERE post_id = 'tw-2'").fetchall()[0][0] == ["@anna_k"]


def test_conversation_relationships_follow_handles_to_parties(store, tmp_path: Path):
    load_posts(store, _write(tmp_path, POSTS))
    store.sql("INSERT INTO handles VALUES ('twitter', '@anna_k', 'u1', 'test')")
    derive_relationships(store, rules=("replied-to", "mentions"))
    replies = store.sql(
        "SELECT src, dst FROM relationships WHERE rel_type = 'replied-to' ORDER BY 1"
    ).fetchall()
    assert replies == [("@ben", "u1"), ("@dan", "u1"), ("@kaffeekorb", "@cara")]
    mentions = store.sql(
        "SELECT src, dst FROM relationships WHERE rel_type = 'mentions' ORDER BY 1"
    ).fetchall()
    # a reply naming the author it answers is a reply, not a mention
    assert mentions == [("@cara", "@kaffeekorb"), ("u1", "@kaffeekorb")]


def test_conversation_report(store, tmp_path: Path):
    load_posts(store, _write(tmp_path, POSTS))
    rep = conversation_report(store, top=5)
    assert rep["posts"] == 5 and rep["brands"] == ["@kaffeekorb"]
    weeks = [(m["period"].isoformat(), m["posts"]) for m in rep["brand_mentions"]]
    assert weeks == [("2024-02-26", 1), ("2024-03-04", 1)]
    # anna is answered twice: the most influential voice (the brand itself is left out)
    assert rep["influential_voices"][0]["handle"] == "@anna_k"
    assert rep["influential_voices"][0]["answers_received"] == 2
    pairs = {(a["answerer"], a["author"]) for a in rep["who_answers_whom"]}
    assert ("@kaffeekorb", "@cara") in pairs and ("@ben", "@anna_k") in pairs
    assert rep["key_phrases"][0]["phrase"] in {"espresso", "großartig", "espresso großartig"}


def test_key_phrases_need_two_posts():
    phrases = key_phrases(["Cold brew is great", "cold brew again", "nothing here"], top=3)
    assert phrases[0]["phrase"] in {"cold", "brew", "cold brew"} and phrases[0]["posts"] == 2
    assert all(p["posts"] >= 2 for p in phrases)
