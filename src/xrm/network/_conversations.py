"""What customers say to each other: sentiment, key phrases, brand mentions, voices, who answers whom.

Key phrases are the uni- and bigrams with the highest summed TF-IDF over posts (Salton & Buckley
1988), stop words of German and English left out.  Influential voices are the authors with the
highest PageRank on the reply-and-mention graph (an answer or mention credits its target).

    >>> from xrm.network import conversation_report
    >>> conversation_report(store, brand_handles=["@kaffeekorb"])["posts"]  # doctest: +SKIP
    5120
"""

from __future__ import annotations

import math
import re
from collections import Counter
from itertools import pairwise
from typing import Any

from xrm.exceptions import InputError
from xrm.network._files import normalise_handle
from xrm.network._graph import graph_from_edges
from xrm.store import Store

__all__ = ["conversation_report", "key_phrases"]

_WORD = re.compile(r"(?<![@\w])[^\W\d_][\w'-]*", re.UNICODE)
_STOP_WORDS = """
der die das den dem des ein eine einen einem einer eines und oder aber ist sind war hat haben
habe ich du er sie es wir ihr mich mir dich dir uns euch sich mein meine meinen dein deine sein
seine nicht kein keine auch noch schon wieder mal nur so wie was wer warum wo wann ob dass als
am an auf aus bei bis für im in mit nach seit über um von vor zu zum zur da dann denn doch ja
nein sehr einfach jemand heute hier jetzt gibt geht gut diese dieser dieses man mehr wird werden
wurde the a an and or but is are was were be been have has had i you he she it we they me my
your our their this that these those not no of to in on at for from with by as just still so too
very same here there what why how who when can will would should let's lets its it's im i'm
"""
_STOP = frozenset(_STOP_WORDS.split())


def _tokens(text: str) -> list[str]:
    return [w.lower() for w in _WORD.findall(text) if len(w) > 2 and w.lower() not in _STOP]


def key_phrases(texts: list[str], top: int = 10) -> list[dict[str, Any]]:
    """The ``top`` uni/bigrams by summed TF-IDF, with the number of posts using each."""
    docs: list[Counter[str]] = []
    df: Counter[str] = Counter()
    for text in texts:
        toks = _tokens(text)
        grams = Counter(toks + [f"{a} {b}" for a, b in pairwise(toks)])
        docs.append(grams)
        df.update(grams.keys())
    n = len(docs)
    score: dict[str, float] = {}
    for grams in docs:
        length = sum(grams.values()) or 1
        for g, c in grams.items():
            if df[g] < 2:  # a phrase one post uses is not a topic
                continue
            score[g] = score.get(g, 0.0) + (c / length) * math.log(1 + n / df[g])
    best = sorted(score.items(), key=lambda kv: (-kv[1], kv[0]))[:top]
    return [{"phrase": g, "score": round(s, 4), "posts": df[g]} for g, s in best]


def conversation_report(
    store: Store,
    *,
    brand_handles: list[str] | None = None,
    top: int = 10,
    period: str = "week",
) -> dict[str, Any]:
    """Counts, sentiment by language, key phrases, brand mentions per period, voices and answers.

    Without ``brand_handles`` the brand is the handle most mentioned in posts that are not replies.
    """
    if period not in ("day", "week", "month"):
        raise InputError(f"period = {period!r} is not known; use day, week or month")
    total = store.sql("SELECT count(*) FROM posts").fetchall()[0][0]
    if not total:
        raise InputError("no posts in the store; load some with `xrm network conversations FILE`")
    langs = store.sql("""
        SELECT lang, count(*), round(avg(sentiment), 4),
               count(*) FILTER (WHERE sentiment > 0.05), count(*) FILTER (WHERE sentiment < -0.05)
        FROM posts GROUP BY 1 ORDER BY 2 DESC
    """).fetchall()
    texts = [r[0] for r in store.sql("SELECT text FROM posts").fetchall()]
    brands = (
        [normalise_handle(b) for b in brand_handles]
        if brand_handles
        else [
            r[0]
            for r in store.sql("""
            SELECT m, count(*) FROM (SELECT unnest(mentions) AS m FROM posts WHERE reply_to IS NULL)
            GROUP BY 1 ORDER BY 2 DESC, 1 LIMIT 1
        """).fetchall()
        ]
    )
    over_time = store.sql(
        f"""
        SELECT m AS brand, date_trunc('{period}', ts)::DATE AS period, count(*) AS posts,
               round(avg(sentiment), 4) AS sentiment
        FROM (SELECT unnest(mentions) AS m, ts, sentiment FROM posts)
        WHERE list_contains(?, m) GROUP BY 1, 2 ORDER BY 1, 2
    """,
        [brands],
    ).fetchall()
    # Voices are ranked on consumer-to-consumer talk: the brand's own accounts are left out, and
    # a reply's mention of the author it answers counts once, as the reply.
    edges = [
        e
        for e in store.sql("""
        SELECT r.author_handle, o.author_handle, 'replied-to'
        FROM posts r JOIN posts o ON o.post_id = r.reply_to
        WHERE r.author_handle <> o.author_handle
        UNION ALL
        SELECT m.author_handle, m.h, 'mentions'
        FROM (SELECT author_handle, reply_to, unnest(mentions) AS h FROM posts) m
        LEFT JOIN posts o ON o.post_id = m.reply_to
        WHERE m.author_handle <> m.h AND (o.author_handle IS NULL OR o.author_handle <> m.h)
        """).fetchall()
        if e[0] not in brands and e[1] not in brands
    ]
    voices: list[dict[str, Any]] = []
    if edges:
        pg = graph_from_edges([e[0] for e in edges], [e[1] for e in edges], [e[2] for e in edges])
        pr = pg.directed.pagerank(weights="weight", directed=True)
        stats = {
            h: (n, s)
            for h, n, s in store.sql(
                "SELECT author_handle, count(*), round(avg(sentiment), 4) FROM posts GROUP BY 1"
            ).fetchall()
        }
        ranked = sorted(range(pg.size), key=lambda i: (-pr[i], pg.names[i]))
        for i in ranked:
            n_posts, sent = stats.get(pg.names[i], (0, None))
            voices.append(
                {
                    "handle": pg.names[i],
                    "pagerank": round(pr[i], 6),
                    "posts": n_posts,
                    "sentiment": sent,
                    "answers_received": pg.directed.indegree(i),
                }
            )
            if len(voices) >= top:
                break
    answers = store.sql(f"""
        SELECT r.author_handle AS answerer, o.author_handle AS author, count(*) AS replies,
               round(avg(r.sentiment), 4) AS sentiment
        FROM posts r JOIN posts o ON o.post_id = r.reply_to
        GROUP BY 1, 2 ORDER BY 3 DESC, 1, 2 LIMIT {int(top)}
    """).fetchall()
    return {
        "posts": int(total),
        "by_language": [
            {"lang": la, "posts": n, "sentiment": s, "positive": p, "negative": ng}
            for la, n, s, p, ng in langs
        ],
        "key_phrases": key_phrases(texts, top),
        "brands": brands,
        "brand_mentions": [{"brand": b, "period": d, "posts": n, "sentiment": s} for b, d, n, s in over_time],
        "influential_voices": voices,
        "who_answers_whom": [
            {"answerer": a, "author": b, "replies": n, "sentiment": s} for a, b, n, s in answers
        ],
    }
