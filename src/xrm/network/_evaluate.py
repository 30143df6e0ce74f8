"""Are the derived referrals and households the true ones? Scored against a known truth.

The sample business writes who referred whom (``truth/referrals.parquet``) and who lives with
whom (``truth/persons.parquet``, ``household_id``). Each party of the network is mapped to the
true person most of its user ids and source records belong to; then the derived ``referred``
and ``household`` relationships, as pairs of persons, are compared with the true pairs:

* precision = derived pairs that are true / derived pairs (a party that maps to no person makes
  its pairs wrong), recall = true pairs derived / true pairs;
* for referrals also per referrer: the people known to have referred someone, found or not.

    >>> score_relationships(store, "demo/sample/truth")["household"]  # doctest: +SKIP
    {'derived': 2310, 'true': 2398, 'correct': 2205, 'precision': 0.955, 'recall': 0.920}
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from xrm.exceptions import InputError
from xrm.network._derive import identity_mode, party_map_cte

__all__ = ["score_relationships"]



def _pr(derived: int, true: int, correct: int) -> dict[str, Any]:
    return {
        "derived": derived, "true": true, "correct": correct,
        "precision": correct / derived if derived else None,
        "recall": correct / true if true else None,
    }


def score_relationships(store: Any, truth_dir: str | Path, identity: str = "auto") -> dict[str, Any]:
    """Precision and recall of the derived ``referred`` and ``household`` relationships."""
    truth = Path(truth_dir)
    names = ("persons", "referrals", "identifier_person", "record_person")
    files = {n: truth / f"{n}.parquet" for n in names}
    for path in files.values():
        if not path.exists():
            raise InputError(f"{path}: no ground truth file; the sample business writes it (`xrm sample`)")
    mode = identity_mode(store, identity)
    from xrm.sample._truth import USER_ID_TRUTH_TYPES  # the truth file's writer; loaded when scored

    types = ", ".join(f"'{t}'" for t in USER_ID_TRUTH_TYPES)
    cur = store.con.cursor()
    try:
        cur.execute(
            f"""
            CREATE OR REPLACE TEMP TABLE net_party_person AS
            WITH {party_map_cte(mode)},
            ip AS (SELECT value, person_id FROM read_parquet(?)
                   WHERE identifier_type IN ({types}) AND NOT shared),
            votes AS (
                SELECT up.party_id, ip.person_id FROM up JOIN ip ON ip.value = up.user_id
                UNION ALL
                SELECT rp.party_id, t.person_id FROM rp JOIN read_parquet(?) t USING (record_id)
                UNION ALL
                SELECT p.party_id, ip.person_id FROM parties p JOIN ip ON ip.value = p.party_id
            )
            SELECT party_id, mode(person_id) AS person_id FROM votes GROUP BY party_id
            """,
            [str(files["identifier_person"]), str(files["record_person"])],
        )
        derived_pairs = """
            SELECT DISTINCT {a} AS p1, {b} AS p2
            FROM relationships r
            LEFT JOIN net_party_person s ON s.party_id = r.src
            LEFT JOIN net_party_person d ON d.party_id = r.dst
            WHERE r.rel_type = '{rel}'
        """
        ref = derived_pairs.format(a="s.person_id", b="d.person_id", rel="referred")
        true_ref = (
            "SELECT DISTINCT referrer_person_id AS p1, referred_person_id AS p2 "
            f"FROM read_parquet('{files['referrals']}')"
        )
        house = derived_pairs.format(
            a="least(s.person_id, d.person_id)", b="greatest(s.person_id, d.person_id)", rel="household"
        )
        true_house = f"""
            SELECT a.person_id AS p1, b.person_id AS p2
            FROM read_parquet('{files['persons']}') a JOIN read_parquet('{files['persons']}') b
              ON a.household_id = b.household_id AND a.person_id < b.person_id
        """

        def counts(derived: str, true: str, keep: str) -> dict[str, Any]:
            # Pairs of one person twice (two user ids or a duplicate profile: identity's business)
            # are counted apart; a party that maps to no person makes its pair wrong.
            (n_derived, same, n_true, correct), = cur.execute(
                f"""
                WITH d AS ({derived}), t AS ({true})
                SELECT (SELECT count(*) FROM d WHERE p1 IS DISTINCT FROM p2 OR p2 IS NULL),
                       (SELECT count(*) FROM d WHERE p1 = p2),
                       (SELECT count(*) FROM t),
                       (SELECT count(*) FROM (SELECT * FROM d {keep} INTERSECT SELECT * FROM t))
                """
            ).fetchall()
            return {**_pr(n_derived, n_true, correct), "same_person": same}

        pairs = "WHERE p1 IS NOT NULL AND p2 IS NOT NULL AND p1 <> p2"
        referred = counts(ref, true_ref, pairs)
        referrers = counts(
            f"SELECT DISTINCT p1, NULL AS p2 FROM ({ref})",
            f"SELECT DISTINCT p1, NULL AS p2 FROM ({true_ref})", "WHERE p1 IS NOT NULL",
        )
        household = counts(house, true_house, pairs)
        (parties, mapped), = cur.execute(
            """
            WITH p AS (SELECT src AS party_id FROM relationships WHERE rel_type IN ('referred', 'household')
                       UNION SELECT dst FROM relationships WHERE rel_type IN ('referred', 'household'))
            SELECT count(*), count(m.person_id) FROM p LEFT JOIN net_party_person m USING (party_id)
            """
        ).fetchall()
    finally:
        cur.close()
    return {
        "identity": mode, "parties": parties, "parties_with_person": mapped,
        "referred": referred, "referrers": referrers, "household": household,
    }
