"""Batch identity resolution: records and events -> identity graph -> profiles with stable ids.

    >>> from xrm.identify import resolve_identities
    >>> resolve_identities(store)  # doctest: +SKIP
    {'records': 1000, 'profiles': 812, ...}
"""

from __future__ import annotations

import datetime as dt
import json
import time
from typing import Any

import numpy as np

from xrm.identify._bulk_write import build_keys, fill_empty
from xrm.identify._components import Override, connected_labels, solve_with_rules
from xrm.identify._golden import build_golden_records
from xrm.identify._occurrences import build_occurrences, event_signature_sql, signature_columns
from xrm.identify._probabilistic import merge_probabilistic, write_probabilistic
from xrm.identify._records import normalize_records
from xrm.identify._rules import RECORD_TYPE, IdentityRules
from xrm.identify._stable import assign_profile_ids

__all__ = ["resolve_graph", "resolve_identities"]


def resolve_identities(store: Any, rules: IdentityRules | None = None) -> dict[str, Any]:
    """Normalise records, build the identity graph, write profiles; returns summary counts."""
    rules = rules or IdentityRules.for_settings(store.settings)
    norm = normalize_records(store, rules)
    linkage: dict[str, Any] = {}
    if rules.linkage.enabled:
        from xrm.identify._linkage import link_records

        linkage = link_records(store, rules)
    graph = resolve_graph(store, rules)
    return {**graph, "normalize_seconds": norm["seconds"], "normalize_records_per_s": norm["records_per_s"],
            "linkage": linkage}


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def _load_overrides(cur: Any) -> list[Override]:
    rows = cur.execute(
        """
        WITH o AS (SELECT override_id, reason, side_a, side_b FROM identity_overrides WHERE active),
        sides AS (
            SELECT override_id, 0 AS side, unnest(CAST(side_a AS VARCHAR[][])) AS pair FROM o
            UNION ALL
            SELECT override_id, 1, unnest(CAST(side_b AS VARCHAR[][])) FROM o
        )
        SELECT s.override_id, s.side, list(n.node ORDER BY n.node), any_value(o.reason)
        FROM sides s JOIN nodes n ON n.id_type = s.pair[1] AND n.id_value = s.pair[2]
        JOIN o USING (override_id)
        GROUP BY s.override_id, s.side ORDER BY 1, 2
        """
    ).fetchall()
    sides: dict[int, dict[int, frozenset[int]]] = {}
    reasons: dict[int, str] = {}
    for oid, side, nodes, reason in rows:
        sides.setdefault(oid, {})[side] = frozenset(nodes)
        reasons[oid] = reason
    return [
        Override(oid, s[0], s[1], reasons[oid]) for oid, s in sides.items() if 0 in s and 1 in s
    ]


def resolve_graph(store: Any, rules: IdentityRules, *, kind: str = "batch") -> dict[str, Any]:
    """The graph part of :func:`resolve_identities` (normalised records must be current).

    The graph is built on the run's own cursor outside its transaction, each statement committing
    on its own (temp tables: nothing another connection sees), and only the writes run inside it.
    DuckDB keeps every temp table that a transaction created or dropped until its COMMIT: in one
    transaction the step's temp tables held 4.2 GB at 300k customers, all alive at the peak
    (issue 9). Outside it, each is freed as soon as its last reader is done.
    """
    start = time.perf_counter()
    build_keys(store)  # a first run killed between its two COMMITs
    now = _now()
    cur = store.con.cursor()
    try:
        built = _build_graph(cur, rules, now)
        cur.execute("BEGIN TRANSACTION")
        try:
            summary = _write_run(cur, rules, kind, now, built, start)
            t_commit = time.perf_counter()
            cur.execute(
                "UPDATE identity_runs SET finished_at = ?, summary = ? WHERE run_id = ?",
                [_now(), json.dumps(summary), summary["run_id"]],
            )
            cur.execute("COMMIT")
        except BaseException:
            cur.execute("ROLLBACK")
            raise
    finally:
        cur.close()
    summary["commit_seconds"] = round(time.perf_counter() - t_commit, 3)  # the graph's COMMIT
    t_keys = time.perf_counter()
    if build_keys(store):  # a first run: keys and indexes over the committed rows
        summary["keys_seconds"] = round(time.perf_counter() - t_keys, 3)
    return summary


def _build_graph(cur: Any, rules: IdentityRules, now: dt.datetime) -> dict[str, Any]:
    """Occurrences, components, rule pass and clustering, in autocommit: leaves the temp tables
    ``nodes``, ``assign(node, comp)``, ``run_links``, ``rejected``, ``sig_node`` (each event
    signature's deciding node), ``evidence_node`` and, with linkage, what
    :func:`write_probabilistic` writes; returns the counts for the summary."""
    import pyarrow as pa

    start = time.perf_counter()
    stats = build_occurrences(cur, rules)
    t_occ = time.perf_counter() - start
    n_nodes = stats["nodes"]

    # -- fast pass: connected components of every occurrence's identifiers -----------------
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE edges AS
        SELECT e.a, e.b, {'ts': o.ts, 'occ': o.occ} AS first
        FROM (SELECT a.anchor AS a, o.node AS b, min(o.oid) AS first_oid
              FROM occ_nodes o JOIN occ_anchor a USING (oid)
              WHERE o.node <> a.anchor GROUP BY a.anchor, o.node) e
        JOIN occs o ON o.oid = e.first_oid
        """
    )
    e = cur.execute("SELECT a, b FROM edges").fetchnumpy()
    t_cc = time.perf_counter()
    k, labels = connected_labels(n_nodes, np.asarray(e["a"]), np.asarray(e["b"]))
    del e
    t_cc = time.perf_counter() - t_cc

    codes = {t: i for i, t in enumerate(rules.glue_types)}
    code_case = " ".join(f"WHEN '{t}' THEN {i}" for t, i in codes.items())
    types = np.asarray(
        cur.execute(
            f"SELECT CASE id_type {code_case} ELSE -1 END AS c FROM nodes ORDER BY node"
        ).fetchnumpy()["c"]
    )
    limits = {
        codes[t]: (t, rules.rule(t).limit) for t in rules.glue_types if rules.rule(t).limit > 0
    }
    bad = np.zeros(k, dtype=bool)
    for code, (_, limit) in limits.items():
        bad |= np.bincount(labels[types == code], minlength=k) > limit
    overrides = _load_overrides(cur)
    for o in overrides:
        both = {labels[n] for n in o.side_a} & {labels[n] for n in o.side_b}
        bad[list(both)] = True

    # -- rule pass: replay the occurrences of rule-breaking components in time order -------
    bad_nodes = np.nonzero(bad[labels])[0]
    n_dropped = 0
    solved_links: list[Any] = []
    if len(bad_nodes):
        cur.register("bad_arrow", pa.table({"node": pa.array(bad_nodes, pa.int32())}))
        cur.execute("CREATE OR REPLACE TEMP TABLE bad_nodes AS SELECT * FROM bad_arrow")
        cur.unregister("bad_arrow")
        occs = cur.execute(
            """
            WITH per_occ AS (
                SELECT oid, list(node ORDER BY node) AS nodes FROM occ_nodes
                WHERE oid IN (SELECT oid FROM occ_nodes WHERE node IN (SELECT node FROM bad_nodes))
                GROUP BY oid
            )
            SELECT o.occ, o.ts, f.nodes
            FROM (SELECT nodes, min(oid) AS first_oid FROM per_occ GROUP BY nodes) f
            JOIN occs o ON o.oid = f.first_oid
            ORDER BY o.oid
            """
        ).fetchall()
        node_type = {int(n): int(types[n]) for n in bad_nodes}
        roots, solved_links = solve_with_rules(occs, node_type, limits, overrides)
        base = k
        relabel: dict[int, int] = {}
        for node, root in roots.items():
            labels[node] = relabel.setdefault(root, base + len(relabel))
        k = base + len(relabel)
        n_dropped = sum(lk.status == "dropped" for lk in solved_links)
        # Python objects per rule-pass node, otherwise alive through the write (issue 9).
        del occs, node_type, roots, relabel
    cur.execute("DROP TABLE IF EXISTS occ_nodes")

    # This run's links: the fast pass's edges outside rule-breaking components, then the
    # rule pass's links (made and refused) inside them.
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE run_links AS
        SELECT a, b, 'linked' AS status, first.occ AS occ, first.ts AS ts,
               'seen together' AS reason
        FROM edges WHERE a NOT IN (SELECT node FROM bad_nodes)
        """
        if len(bad_nodes)
        else """
        CREATE OR REPLACE TEMP TABLE run_links AS
        SELECT a, b, 'linked' AS status, first.occ AS occ, first.ts AS ts,
               'seen together' AS reason FROM edges
        """
    )
    cur.execute("DROP TABLE IF EXISTS edges")
    cur.execute("DROP TABLE IF EXISTS bad_nodes")
    if solved_links:
        cur.register(
            "links_arrow",
            pa.table({
                "a": pa.array([lk.a for lk in solved_links], pa.int32()),
                "b": pa.array([lk.b for lk in solved_links], pa.int32()),
                "status": [lk.status for lk in solved_links],
                "occ": [lk.occ for lk in solved_links],
                "ts": pa.array([lk.ts for lk in solved_links], pa.timestamp("us")),
                "reason": [lk.reason for lk in solved_links],
            }),
        )
        # One row per pair: a refused link that a later occurrence made anyway is not shown.
        cur.execute(
            """
            INSERT INTO run_links
            SELECT a, b, arg_min(status, (status <> 'linked', ts, occ)),
                   arg_min(occ, (status <> 'linked', ts, occ)),
                   arg_min(ts, (status <> 'linked', ts, occ)),
                   arg_min(reason, (status <> 'linked', ts, occ))
            FROM links_arrow GROUP BY a, b
            """
        )
        cur.unregister("links_arrow")
        solved_links.clear()
    _node_sources(cur, rules)

    # -- probabilistic pass: fuzzy links join the final components, below every rule -------
    n_prob_links = 0
    prob_counts: dict[str, int] = {}
    t_prob = time.perf_counter()
    if rules.linkage.enabled:
        labels, n_prob_links, prob_counts = merge_probabilistic(
            cur, rules, labels, types, limits, overrides, now
        )
    t_prob = time.perf_counter() - t_prob
    del types

    cur.register(
        "assign_arrow",
        pa.table({"node": pa.array(np.arange(n_nodes), pa.int32()),
                  "comp": pa.array(labels, pa.int64())}),
    )
    cur.execute("CREATE OR REPLACE TEMP TABLE assign AS SELECT * FROM assign_arrow")
    cur.unregister("assign_arrow")
    del labels
    if n_prob_links:
        cur.execute("INSERT INTO run_links SELECT a, b, status, occ, ts, reason FROM prob_links")
    cur.execute("DROP TABLE IF EXISTS prob_links")
    return {"stats": stats, "n_dropped": n_dropped, "n_ruled": len(bad_nodes), "prob_counts": prob_counts,
            "occurrence_seconds": round(t_occ, 3), "components_seconds": round(t_cc, 3),
            "clustering_seconds": round(t_prob, 3)}


def _node_sources(cur: Any, rules: IdentityRules) -> None:
    """What the write needs of the occurrences, by node, so that they go before it: each event
    signature's anchor (``sig_node``) and the evidence per deciding node (``evidence_node``; a
    record's is its own node, the rule pass may keep it from its anchor's)."""
    sig_cols = ", ".join(f"s.{c}" for c in signature_columns(rules))
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE sig_node AS "
        f"SELECT {sig_cols}, a.anchor AS node FROM ev_sig s JOIN occ_anchor a USING (oid)"
    )
    cur.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE evidence_node AS
        WITH occ_node AS (
            SELECT a.oid, o.n, CASE WHEN a.kind = 'record' THEN r.node ELSE a.anchor END AS node
            FROM occ_anchor a JOIN occs o USING (oid)
            LEFT JOIN nodes r
                   ON a.kind = 'record' AND r.id_type = '{RECORD_TYPE}' AND r.id_value = o.record_id
        )
        SELECT p.node, e.id_type, e.id_value, sum(p.n)::BIGINT AS n
        FROM evidence e JOIN occ_node p USING (oid) GROUP BY ALL
        """
    )
    for table in ("ev_sig", "evidence", "occ_anchor", "occs"):
        cur.execute(f"DROP TABLE IF EXISTS {table}")


def _write_run(
    cur: Any, rules: IdentityRules, kind: str, now: dt.datetime, built: dict[str, Any], start: float
) -> dict[str, Any]:
    """The run's writes, inside its transaction; returns the summary."""
    (run_id,), = cur.execute("SELECT coalesce(max(run_id), 0) + 1 FROM identity_runs").fetchall()
    cur.execute(
        "INSERT INTO identity_runs (run_id, kind, started_at, rules) VALUES (?, ?, ?, ?)",
        [run_id, kind, now, rules.model_dump_json()],
    )
    if rules.linkage.enabled:
        write_probabilistic(cur, now)
    id_stats = assign_profile_ids(cur, run_id, now)
    _write(cur, rules, run_id, now)
    summary = _summary(cur, built["stats"], id_stats, built["n_dropped"], built["n_ruled"])
    summary["seconds"] = round(time.perf_counter() - start, 3)
    for key in ("occurrence_seconds", "components_seconds", "clustering_seconds"):
        summary[key] = built[key]
    summary["run_id"] = int(run_id)
    summary.update(built["prob_counts"])
    summary.update(build_golden_records(cur, rules.golden))
    return summary


def _sync(cur: Any, table: str, source: str, keys: tuple[str, ...], cols: tuple[str, ...]) -> None:
    """Make ``table`` equal to ``source`` writing only the rows that changed.

    Rewriting whole tables that carry a primary key made DuckDB spend most of a run in COMMIT
    (index upkeep); a rerun over unchanged data now writes next to nothing.
    """
    names = ", ".join(cols)
    # A first run (every new store, and the scale benchmark): everything is new, nothing is
    # gone. Filling the empty table bare and keying it after skips the copy of the source, two
    # anti-joins, INSERT OR REPLACE's conflict checks and the row-by-row key upkeep (issue 9).
    # The sources hold one row per key.
    if fill_empty(cur, table, names, source):
        return
    on = " AND ".join(f"t.{c} = s.{c}" for c in keys)
    same = " AND ".join(f"t.{c} IS NOT DISTINCT FROM s.{c}" for c in cols)
    cur.execute(f"CREATE OR REPLACE TEMP TABLE sync_src AS SELECT {names} FROM {source}")
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE sync_gone AS SELECT {', '.join(keys)} FROM {table} t "
        f"WHERE NOT EXISTS (SELECT 1 FROM sync_src s WHERE {on})"
    )
    cur.execute(
        f"CREATE OR REPLACE TEMP TABLE sync_new AS SELECT * FROM sync_src s "
        f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {same})"
    )
    gone_on = " AND ".join(f"{table}.{c} = g.{c}" for c in keys)
    cur.execute(f"DELETE FROM {table} WHERE EXISTS (SELECT 1 FROM sync_gone g WHERE {gone_on})")
    cur.execute(f"INSERT OR REPLACE INTO {table} ({names}) SELECT {names} FROM sync_new")
    # event_profiles' copies have a row per event: not kept for the rest of the run.
    for tmp in ("sync_src", "sync_gone", "sync_new"):
        cur.execute(f"DROP TABLE IF EXISTS {tmp}")


def _write(cur: Any, rules: IdentityRules, run_id: int, now: dt.datetime) -> None:
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE node_pid AS
        SELECT n.*, cp.profile_id FROM nodes n JOIN assign a USING (node) JOIN comp_pid cp USING (comp)
        """
    )
    _sync(cur, "identifiers", "node_pid", ("id_type", "id_value"),
          ("id_type", "id_value", "profile_id", "first_seen", "last_seen", "n_seen"))
    _sync(cur, "profile_records",
          f"(SELECT id_value AS record_id, profile_id FROM node_pid WHERE id_type = '{RECORD_TYPE}')",
          ("record_id",), ("record_id", "profile_id"))
    # Each event takes its signature's profile: one pass over the events, joined on the
    # signature (NULL matches NULL: an event without an anonymous id is still an occurrence).
    sig_cols = signature_columns(rules)
    on = " AND ".join(f"e.{c} IS NOT DISTINCT FROM s.{c}" for c in sig_cols)
    sig_pid = (f"(SELECT {', '.join(f's.{c}' for c in sig_cols)}, p.profile_id "
               f"FROM sig_node s JOIN node_pid p USING (node))")
    # The graph read the events outside this transaction: an event stored since (by the online
    # path) may have a signature it does not know. Its row, if any, is kept, not removed as gone:
    # events received from a minute before the run's start on keep their row unless the graph
    # places them (the next run decides).
    since = (now - dt.timedelta(minutes=1)).isoformat(sep=" ")
    _sync(cur, "event_profiles",
          f"(WITH g AS MATERIALIZED (SELECT e.message_id, s.profile_id FROM ({event_signature_sql(rules)}) e "
          f"JOIN {sig_pid} s ON {on}) "
          f"SELECT message_id, profile_id FROM g UNION ALL "
          f"SELECT ep.message_id, ep.profile_id FROM event_profiles ep JOIN events e USING (message_id) "
          f"WHERE e.received_at >= TIMESTAMP '{since}' "
          f"AND NOT EXISTS (SELECT 1 FROM g WHERE g.message_id = ep.message_id))",
          ("message_id",), ("message_id", "profile_id"))
    _sync(cur, "profile_evidence",
          "(SELECT p.profile_id, e.id_type, e.id_value, sum(e.n)::BIGINT AS n_seen FROM evidence_node e "
          "JOIN node_pid p USING (node) GROUP BY ALL)",
          ("profile_id", "id_type", "id_value"), ("profile_id", "id_type", "id_value", "n_seen"))
    # Rewritten whole by every run; a first run fills them bare and indexes them after.
    links = (
        f"(SELECT na.id_type AS type_a, na.id_value AS value_a, nb.id_type AS type_b, "
        f"nb.id_value AS value_b, l.status, l.occ AS occurrence, l.ts, l.reason, {run_id} AS run_id "
        f"FROM run_links l JOIN nodes na ON na.node = l.a JOIN nodes nb ON nb.node = l.b)"
    )
    link_cols = "type_a, value_a, type_b, value_b, status, occurrence, ts, reason, run_id"
    if not fill_empty(cur, "identity_links", link_cols, links):
        cur.execute("DELETE FROM identity_links")
        cur.execute(f"INSERT INTO identity_links ({link_cols}) SELECT {link_cols} FROM {links}")
    rej_cols = "id_type, id_value, reason, n_seen"
    if not fill_empty(cur, "rejected_identifiers", rej_cols, "rejected"):
        cur.execute("DELETE FROM rejected_identifiers")
        cur.execute(f"INSERT INTO rejected_identifiers ({rej_cols}) SELECT {rej_cols} FROM rejected")
    cur.execute(
        """
        CREATE OR REPLACE TEMP TABLE prof_now AS
        SELECT profile_id, count(*) FILTER (WHERE id_type = 'record') AS n_records,
               count(*) AS n_identifiers
        FROM node_pid GROUP BY profile_id
        """
    )
    cur.execute(
        """
        INSERT INTO profiles AS p (profile_id, status, merged_into, created_run, created_at,
                                   updated_at, n_records, n_identifiers)
        SELECT profile_id, 'active', NULL, ?, ?, ?, n_records, n_identifiers FROM prof_now
        ON CONFLICT (profile_id) DO UPDATE SET
            updated_at = CASE WHEN p.status <> 'active' OR p.n_records <> excluded.n_records
                              OR p.n_identifiers <> excluded.n_identifiers
                              THEN excluded.updated_at ELSE p.updated_at END,
            status = 'active', merged_into = NULL,
            n_records = excluded.n_records, n_identifiers = excluded.n_identifiers
        """,
        [run_id, now, now],
    )
    merges = cur.execute(
        "SELECT other_profile_id, profile_id FROM merge_log WHERE run_id = ? AND action = 'merge'",
        [run_id],
    ).fetchall()
    for old, into in merges:
        cur.execute(
            "UPDATE profiles SET status = 'merged', merged_into = ?, updated_at = ? "
            "WHERE profile_id = ? OR merged_into = ?",
            [into, now, old, old],
        )
    cur.execute(
        "UPDATE profiles SET status = 'retired', updated_at = ? WHERE profile_id IN "
        "(SELECT profile_id FROM merge_log WHERE run_id = ? AND action = 'retire')",
        [now, run_id],
    )


def _summary(
    cur: Any, stats: dict[str, int], id_stats: dict[str, int], n_dropped: int, n_ruled: int
) -> dict[str, Any]:
    (records, profiles, with_records, events), = cur.execute(
        """
        SELECT (SELECT count(*) FROM profile_records),
               (SELECT count(*) FROM profiles WHERE status = 'active'),
               (SELECT count(DISTINCT profile_id) FROM profile_records),
               (SELECT count(*) FROM event_profiles)
        """
    ).fetchall()
    return {
        "records": int(records),
        "events_resolved": int(events),
        "profiles": int(profiles),
        "profiles_with_records": int(with_records),
        "identifiers": stats["nodes"],
        "rejected_values": stats["rejected_values"],
        "links_dropped": n_dropped,
        "nodes_in_rule_pass": n_ruled,
        **id_stats,
    }
