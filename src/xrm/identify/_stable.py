"""Stable profile ids: this run's components take over the ids of the last run's profiles.

Each component is matched to the previous profile it shares the most identifiers with (ties: the
older id), one id per component and one component per id, greedily from the largest overlap
down. So a profile keeps its id when new data arrives; when two merge, the larger (then the
older) id survives; when one splits, the part with most of its identifiers keeps the id. New
components get new ids in order of first sighting, so the same data and history give the same
ids. Every merge, split and retirement is written to ``merge_log`` with the link that caused it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["assign_profile_ids"]


def assign_profile_ids(cur: Any, run_id: int, now: Any) -> dict[str, int]:
    """Needs temp tables ``assign(node, comp)``, ``nodes`` and ``run_links``; makes ``comp_pid``."""
    import pyarrow as pa

    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE prev AS
        SELECT n.node, i.profile_id FROM nodes n
        JOIN identifiers i ON i.id_type = n.id_type AND i.id_value = n.id_value
        """
    )
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE overlap AS
        SELECT a.comp, p.profile_id AS old, count(*) AS n,
               count(*) OVER (PARTITION BY a.comp) AS n_old,
               count(*) OVER (PARTITION BY p.profile_id) AS n_comp
        FROM assign a JOIN prev p USING (node) GROUP BY a.comp, p.profile_id
        """
    )
    contested = cur.execute(
        "SELECT comp, old FROM overlap WHERE n_old > 1 OR n_comp > 1 ORDER BY n DESC, old, comp"
    ).fetchall()
    taken_comp: set[int] = set()
    taken_old: set[int] = set()
    chosen: list[tuple[int, int]] = []
    for comp, old in contested:
        if comp in taken_comp or old in taken_old:
            continue
        taken_comp.add(comp)
        taken_old.add(old)
        chosen.append((comp, old))
    cur.register(
        "chosen_arrow",
        pa.table({"comp": [c for c, _ in chosen], "old": [o for _, o in chosen]},
                 schema=pa.schema([("comp", pa.int64()), ("old", pa.int64())])),
    )
    cur.execute(
        "CREATE OR REPLACE TEMP TABLE kept AS "
        "SELECT comp, old AS profile_id FROM overlap WHERE n_old = 1 AND n_comp = 1 "
        "UNION ALL SELECT comp, old FROM chosen_arrow"
    )
    cur.unregister("chosen_arrow")
    (base,), = cur.execute("SELECT coalesce(max(profile_id), 0) FROM profiles").fetchall()
    # One statement, no INSERT that reads its own target: DuckDB 2.0.0 loses such rows.
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE comp_pid AS
        SELECT comp, profile_id, false AS is_new FROM kept
        UNION ALL
        SELECT comp, {int(base)} + row_number() OVER (ORDER BY first_seen, first_node), true
        FROM (SELECT a.comp, min(n.first_seen) AS first_seen, min(a.node) AS first_node
              FROM assign a JOIN nodes n USING (node)
              WHERE a.comp NOT IN (SELECT comp FROM kept) GROUP BY a.comp)
        """
    )
    # Links with each end's component, old profile and new profile, for the reasons below: only
    # those with an end in a component that overlaps a previous profile (the merges' and
    # splits' components), none on a first run (a copy of every link, alive to the COMMIT).
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE link_ctx AS
        SELECT l.*, ca.comp AS comp_a, cb.comp AS comp_b, pa.profile_id AS old_a,
               pb.profile_id AS old_b, na.id_type AS type_a, na.id_value AS value_a,
               nb.id_type AS type_b, nb.id_value AS value_b
        FROM run_links l
        JOIN assign ca ON ca.node = l.a JOIN assign cb ON cb.node = l.b
        JOIN nodes na ON na.node = l.a JOIN nodes nb ON nb.node = l.b
        LEFT JOIN prev pa ON pa.node = l.a LEFT JOIN prev pb ON pb.node = l.b
        WHERE ca.comp IN (SELECT comp FROM overlap) OR cb.comp IN (SELECT comp FROM overlap)
        """
    )
    when = "strftime(x.ts, '%Y-%m-%d %H:%M:%S')"
    link_text = (
        f"x.type_a || ' ' || x.value_a || ' and ' || x.type_b || ' ' || x.value_b || "
        f"' seen together in ' || x.occ || ' at ' || {when}"
    )
    # Merges: a previous profile that no component kept is absorbed by the one holding most of it.
    cur.execute(
        f"""
        INSERT INTO merge_log (run_id, logged_at, action, profile_id, other_profile_id, reason, details)
        WITH absorbed AS (
            SELECT o.old, arg_min(o.comp, (-o.n, o.comp)) AS comp FROM overlap o
            WHERE o.old NOT IN (SELECT profile_id FROM comp_pid WHERE NOT is_new)
            GROUP BY o.old
        ), crossing AS (
            SELECT ab.old, min({{'ts': x.ts, 'occ': x.occ, 'text': {link_text}}}) AS first
            FROM absorbed ab JOIN link_ctx x ON x.comp_a = ab.comp AND x.status = 'linked'
             AND (coalesce(x.old_a = ab.old, false) <> coalesce(x.old_b = ab.old, false))
            GROUP BY ab.old
        )
        SELECT {run_id}, ?, 'merge', cp.profile_id, ab.old,
               'merged: ' || coalesce(c.first.text, 'identifiers now linked'),
               to_json({{'occurrence': c.first.occ}})
        FROM absorbed ab JOIN comp_pid cp USING (comp) LEFT JOIN crossing c USING (old)
        ORDER BY ab.old
        """,
        [now],
    )
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE absorbed_now AS
        SELECT other_profile_id AS old, profile_id AS into FROM merge_log
        WHERE run_id = ? AND action = 'merge'
        """,
        [run_id],
    )
    # Splits: part of a kept profile went to another component.
    cur.execute(
        f"""
        INSERT INTO merge_log (run_id, logged_at, action, profile_id, other_profile_id, reason, details)
        WITH kept AS (SELECT comp, profile_id FROM comp_pid WHERE NOT is_new),
        parts AS (
            SELECT o.comp, o.old, k.comp AS old_comp, cp.profile_id
            FROM overlap o JOIN kept k ON k.profile_id = o.old JOIN comp_pid cp ON cp.comp = o.comp
            WHERE o.comp <> k.comp
        ), why AS (
            SELECT p.comp, p.old, min({{'ts': x.ts, 'text': x.reason || ' (' || {link_text} || ')'}})
                   AS first
            FROM parts p JOIN link_ctx x ON x.status = 'dropped'
             AND ((x.comp_a = p.comp AND x.comp_b = p.old_comp)
                  OR (x.comp_b = p.comp AND x.comp_a = p.old_comp))
            GROUP BY p.comp, p.old
        )
        SELECT {run_id}, ?, 'split', p.profile_id, p.old,
               'split: ' || coalesce(w.first.text, 'identifiers no longer linked to the profile'),
               NULL
        FROM parts p LEFT JOIN why w USING (comp, old)
        ORDER BY p.old, p.profile_id
        """,
        [now],
    )
    cur.execute(
        f"""
        INSERT INTO merge_log (run_id, logged_at, action, profile_id, other_profile_id, reason, details)
        SELECT {run_id}, ?, 'retire', profile_id, NULL,
               'retired: none of its identifiers or records is in the data any more', NULL
        FROM profiles WHERE status = 'active'
          AND profile_id NOT IN (SELECT old FROM overlap)
          AND profile_id NOT IN (SELECT profile_id FROM comp_pid)
        ORDER BY profile_id
        """,
        [now],
    )
    counts = cur.execute(
        "SELECT action, count(*) FROM merge_log WHERE run_id = ? GROUP BY action", [run_id]
    ).fetchall()
    (new,), = cur.execute("SELECT count(*) FROM comp_pid WHERE is_new").fetchall()
    out = {f"{a}s": int(c) for a, c in counts}
    out["new_profiles"] = int(new)
    return out
