"""Social posts and replies that mention the brand, in German and English.

Authors are customers with a public handle (some told the web shop, so an `identify` trait links
them) and people who are not customers.  The brand account answers complaints.  Replies stay on
their platform and answer an earlier post.

    >>> posts = social_posts(rng, people, params, start_ms, end_ms, offset=0)  # doctest: +SKIP
"""

from __future__ import annotations

import json

import numpy as np

from xrm.sample._catalogue import BRAND_HANDLE, PRODUCTS
from xrm.sample._lifecycle import iso
from xrm.sample._params import SampleParams
from xrm.sample._people import People, scramble

__all__ = ["social_posts"]

_POSTS = (
    ("de", "Der {p} von @{b} ist einfach großartig! ☕"),
    ("de", "Heute den {p} bei @{b} geholt. Mal sehen, ob er hält, was er verspricht."),
    ("de", "@{b} meine Bestellung ist seit einer Woche nicht da. Enttäuschend."),
    ("de", "Hat jemand schon den Müsli-Mixer von @{b} probiert? Lohnt sich das Abo?"),
    ("de", "Frühstück mit {p} von @{b} – so fängt der Sonntag gut an."),
    ("de", "@{b} warum ist der {p} schon wieder teurer geworden?"),
    ("de", "Die Filiale von @{b} in der Innenstadt hat super Beratung. Danke!"),
    ("en", "Loving the {p} from @{b}, best coffee in town"),
    ("en", "@{b} still waiting for my refund... not happy"),
    ("en", "Just subscribed to the cereal box from @{b}, let's see"),
)
_REPLIES = (
    ("de", "@{a} stimme zu!"),
    ("de", "@{a} bei mir genauso, leider."),
    ("de", "@{a} probier mal den {p}, der ist besser."),
    ("en", "@{a} same here"),
    ("en", "@{a} totally agree, their {p} is great"),
)
_BRAND_REPLY = "@{a} Das tut uns leid! Bitte schreiben Sie uns eine Direktnachricht mit Ihrer Bestellnummer."
_COMPLAINTS = {2, 5, 8}


def social_posts(
    rng: np.random.Generator,
    people: People,
    params: SampleParams,
    start_ms: int,
    end_ms: int,
    offset: int,
) -> list[str]:
    """JSONL lines of posts; ``offset`` numbers the chunk's posts after the previous chunks'."""
    b = params.behaviour
    customers = np.flatnonzero(people.handle != None)  # noqa: E711
    strangers = int(len(customers) * 0.6)
    handles = list(people.handle[customers]) + [
        f"@user{x:07d}" for x in scramble(people.gidx[:strangers] + 10**7, 7)
    ]
    platforms = list(people.platform[customers]) + [
        ("twitter", "instagram")[int(x)] for x in rng.integers(0, 2, strangers)
    ]
    per_author = 1 + rng.poisson(b.posts_per_author - 1, len(handles))
    author = np.repeat(np.arange(len(handles)), per_author)
    ts = np.sort(start_ms + (rng.random(len(author)) * (end_ms - start_ms)).astype(np.int64) // 1000 * 1000)
    rng.shuffle(author)
    is_reply = rng.random(len(author)) < 0.3
    template = rng.integers(0, len(_POSTS), len(author))
    reply_tpl = rng.integers(0, len(_REPLIES), len(author))
    product = rng.integers(0, len(PRODUCTS), len(author))
    pick = rng.random(len(author))
    stamps = iso(ts)
    later = iso(np.minimum(ts + 3_600_000, end_ms - 1000))
    lines: list[str] = []
    seen: dict[str, list[tuple[str, str]]] = {"twitter": [], "instagram": []}

    def emit(post_id: str, handle: str, platform: str, lang: str, text: str, mentions: list[str],
             reply_to: str | None, ms: str) -> None:
        lines.append(json.dumps({
            "post_id": post_id, "author_handle": handle, "platform": platform, "lang": lang,
            "text": text, "mentions": mentions, "reply_to": reply_to, "timestamp": ms,
        }, ensure_ascii=False, separators=(",", ":")))

    number = offset
    for k, a in enumerate(author):
        handle, platform = handles[a], platforms[a]
        earlier = seen[platform]
        pname = PRODUCTS[product[k]][1]
        number += 1
        post_id = f"{platform[:2]}-{number:09d}"
        if is_reply[k] and earlier:
            target_id, target_author = earlier[int(pick[k] * len(earlier))]
            lang, text = _REPLIES[reply_tpl[k]]
            text = text.format(a=target_author.lstrip("@"), p=pname)
            emit(post_id, handle, platform, lang, text, [target_author], target_id, stamps[k])
            continue
        lang, text = _POSTS[template[k]]
        emit(post_id, handle, platform, lang, text.format(p=pname, b=BRAND_HANDLE), ["@" + BRAND_HANDLE],
             None, stamps[k])
        earlier.append((post_id, handle))
        if template[k] in _COMPLAINTS:
            number += 1
            emit(f"{platform[:2]}-{number:09d}", "@" + BRAND_HANDLE, platform, "de",
                 _BRAND_REPLY.format(a=handle.lstrip("@")), [handle], post_id, later[k])
    return lines
