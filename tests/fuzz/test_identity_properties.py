"""Properties of the identity graph on a real store: profiles are the connected parts of the glue.

Hypothesis draws small record sets whose glue identifiers (account ids, loyalty cards) come from
tiny pools, so links, chains and merges are common. With limits switched off the profiles must
be exactly the connected components computed here by an independent union-find; every record is
in exactly one active profile; ids are stable across reruns and across the order records arrive;
an unmerge separates the part and a later rerun keeps it apart. The rule pass is checked on its
own with limits and overrides: no profile ever breaks a limit or an override.
"""

from __future__ import annotations

import datetime as dt
import functools
import shutil
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tests.identify.conftest import Seed

from xrm.config import Settings
from xrm.identify import IdentityRules, resolve_identities, unmerge_profile
from xrm.identify._components import Override, solve_with_rules
from xrm.store import Store

NO_LIMITS = IdentityRules.from_mapping(
    {"types": {"user_id": {"limit": 0}, "account_id": {"limit": 0}, "loyalty_card": {"limit": 0},
               "anonymous_id": {"limit": 0}},
     "linkage": {"enabled": False}}  # glue only: the fuzzy linkage has its own tests
)
# Each example opens real DuckDB files (~1 s): few examples, and no shrinking (it would take minutes);
# a failure still prints the example that broke.
STORE_PHASES = (Phase.explicit, Phase.reuse, Phase.generate)
record = st.fixed_dictionaries(
    {
        "account_id": st.none() | st.sampled_from(["A1", "A2", "A3", "A4"]),
        "loyalty_card": st.none() | st.sampled_from(["L1", "L2", "L3"]),
        "day": st.integers(1, 4),  # equal timestamps happen: ids must not depend on arrival order
    }
)
records = st.lists(record, min_size=1, max_size=9)


def _components(rows: list[dict[str, Any]]) -> set[frozenset[str]]:
    """The oracle: records sharing a glue value (transitively) are one person."""
    parent = {f"r:{i}": f"r:{i}" for i in range(len(rows))}

    def find(x: str) -> str:
        while parent[x] != x:
            x = parent[x]
        return x

    for i, row in enumerate(rows):
        for key in ("account_id", "loyalty_card"):
            if row[key]:
                node = f"{key}={row[key]}"
                parent.setdefault(node, node)
                parent[find(node)] = find(f"r:{i}")
    parts: dict[str, set[str]] = {}
    for i in range(len(rows)):
        parts.setdefault(find(f"r:{i}"), set()).add(f"r:{i}")
    return {frozenset(p) for p in parts.values()}


def _load(store: Store, rows: list[dict[str, Any]], order: list[int]) -> None:
    seed = Seed(store)
    for i in order:
        row = rows[i]
        seed.record(f"r:{i}", first_name=f"P{i}", account_id=row["account_id"],
                    loyalty_card=row["loyalty_card"], updated_at=dt.datetime(2024, 1, row["day"]))


def _profiles(store: Store) -> dict[str, int]:
    rows = store.sql(
        "SELECT pr.record_id, pr.profile_id FROM profile_records pr "
        "JOIN profiles p USING (profile_id) WHERE p.status = 'active'"
    ).fetchall()
    seen = [r for r, _ in rows]
    assert len(seen) == len(set(seen)), f"a record is in two active profiles: {sorted(seen)}"
    return dict(rows)


def _partition(of: dict[str, int]) -> set[frozenset[str]]:
    parts: dict[int, set[str]] = {}
    for rec, pid in of.items():
        parts.setdefault(pid, set()).add(rec)
    return {frozenset(p) for p in parts.values()}


@functools.cache
def _template() -> Path:
    """One migrated empty store, copied for each example (migrating afresh takes seconds)."""
    path = Path(tempfile.mkdtemp(prefix="xrm-fuzz-")) / "template.duckdb"
    Store.open(_settings(path)).close()
    return path


def _settings(path: Path) -> Settings:
    return Settings(store_path=path, memory_limit="512MB", threads=1)


def _open(folder: str, name: str) -> Store:
    target = Path(folder) / name
    shutil.copyfile(_template(), target)
    return Store.open(_settings(target))


@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck), phases=STORE_PHASES)
@given(rows=records, order_seed=st.randoms(use_true_random=False))
def test_profiles_are_the_connected_parts_with_stable_ids(
    rows: list[dict[str, Any]], order_seed: Any
) -> None:
    shuffled = list(range(len(rows)))
    order_seed.shuffle(shuffled)
    with tempfile.TemporaryDirectory() as folder, _open(folder, "a.duckdb") as a, \
            _open(folder, "b.duckdb") as b:
        _load(a, rows, list(range(len(rows))))
        resolve_identities(a, NO_LIMITS)
        first = _profiles(a)
        assert set(first) == {f"r:{i}" for i in range(len(rows))}, "every record has a profile"
        assert _partition(first) == _components(rows)

        resolve_identities(a, NO_LIMITS)  # a rerun on the same data changes nothing
        assert _profiles(a) == first

        _load(b, rows, shuffled)  # the same data arriving in another order: the same ids
        resolve_identities(b, NO_LIMITS)
        assert _profiles(b) == first


@settings(max_examples=4, deadline=None, suppress_health_check=list(HealthCheck), phases=STORE_PHASES)
@given(rows=records.filter(lambda rs: any(len(c) > 1 for c in _components(rs))), pick=st.randoms())
def test_unmerge_separates_the_part_and_reruns_keep_it_apart(
    rows: list[dict[str, Any]], pick: Any
) -> None:
    with tempfile.TemporaryDirectory() as folder, _open(folder, "a.duckdb") as store:
        _load(store, rows, list(range(len(rows))))
        resolve_identities(store, NO_LIMITS)
        before = _profiles(store)
        big = pick.choice(sorted(sorted(c) for c in _components(rows) if len(c) > 1))
        moved = pick.choice(big)
        pid = before[moved]
        out = unmerge_profile(store, pid, [("record", moved)], "property test", rules=NO_LIMITS)
        resolve_identities(store, NO_LIMITS)
        after = _profiles(store)
        assert after[moved] != pid, "the part left the profile"
        assert set(after) == set(before), "no record lost or gained"
        outside = {r for r in before if before[r] != pid}
        assert {r: after[r] for r in outside} == {r: before[r] for r in outside}, "others untouched"
        assert out["profile_id"] == pid
        assert pid in {after[r] for r in big if r != moved}, "the rest keeps the id"


# -- the rule pass alone: limits and overrides are never broken -------------------------------
node_types = st.lists(st.integers(0, 2), min_size=2, max_size=14)


@settings(max_examples=200, deadline=None)
@given(data=st.data(), types=node_types, limit=st.integers(1, 3))
def test_rule_pass_never_breaks_a_limit_or_override(data: Any, types: list[int], limit: int) -> None:
    n = len(types)
    node_type = dict(enumerate(types))
    occs = data.draw(st.lists(st.lists(st.integers(0, n - 1), min_size=1, max_size=4, unique=True),
                              min_size=1, max_size=12))
    side_a = data.draw(st.sets(st.integers(0, n - 1), max_size=2))
    side_b = data.draw(st.sets(st.integers(0, n - 1), max_size=2)) - side_a
    overrides = [Override(1, frozenset(side_a), frozenset(side_b), "test")] if side_a and side_b else []
    limits = {0: ("account_id", limit)}
    root_of, links = solve_with_rules(
        [(f"o{i}", i, nodes) for i, nodes in enumerate(occs)], node_type, limits, overrides
    )
    members: dict[int, list[int]] = {}
    for node, root in root_of.items():
        members.setdefault(root, []).append(node)
    for nodes in members.values():
        assert sum(1 for x in nodes if node_type[x] == 0) <= limit
        for o in overrides:
            assert not (o.side_a & set(nodes) and o.side_b & set(nodes)), (o, nodes)
    assert all(link.status in ("linked", "dropped") and link.reason for link in links)
    # nothing is refused without a rule: with no limits and overrides it is plain components
    free_root, _ = solve_with_rules([(f"o{i}", i, nodes) for i, nodes in enumerate(occs)], node_type, {}, [])
    for nodes in occs:
        assert len({free_root[x] for x in nodes}) == 1
