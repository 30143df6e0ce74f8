"""The blend at scale (issue 6): candidates instead of a dense customers x items array."""

from __future__ import annotations

import numpy as np
import pytest
from bench.bench_recommend_scale import synthetic

from xrm.customize import ALSSignal, Baskets, Blend, CoOccurrence, RepeatPurchase, ranking_metrics
from xrm.customize._baskets import split_last_basket
from xrm.customize._blend import segment_top, top_k
from xrm.customize._evaluate import ranking_metrics_codes


def _data(n_users: int = 3000, n_items: int = 1500, seed: int = 0) -> Baskets:
    d = synthetic(n_users, n_items, seed=seed)
    return Baskets(customers=np.arange(n_users), items=np.arange(n_items), user=d["user"], item=d["item"],
                   ordinal=d["basket"], t=d["basket"] * 7.0, n_baskets=d["n_baskets"],
                   last_t=(d["n_baskets"] - 1) * 7.0)


@pytest.fixture(scope="module")
def data() -> Baskets:
    return _data()


@pytest.fixture(scope="module")
def blend(data: Baskets) -> Blend:
    return Blend(als=ALSSignal(factors=16, iterations=4), candidates_per_signal=30).fit(data)


def test_cooccurrence_update_equals_a_fresh_fit(data: Baskets):
    users = np.arange(0, data.n_users, 7)
    rest, _ = split_last_basket(data, users)
    updated = CoOccurrence().fit(rest).update(rest, data, users)
    fresh = CoOccurrence().fit(data)
    assert (updated.counts != fresh.counts).nnz == 0 and np.array_equal(updated.buyers, fresh.buyers)
    assert (updated.matrix != fresh.matrix).nnz == 0
    assert (CoOccurrence().fit(rest).counts != fresh.counts).nnz > 0  # the update did change something


def test_candidate_scores_equal_the_dense_scores(blend: Blend, data: Baskets):
    items, scores = blend.recommend(np.r_[np.arange(200), -1], k=10)  # and a customer without history
    dense = blend.score(np.arange(200))
    # Each recommendation's logit is its dense logit (same features, pair by pair) ...
    np.testing.assert_allclose(np.take_along_axis(dense, items[:-1], axis=1), scores[:-1], rtol=1e-6)
    # ... and the dense top item is almost always among the candidates' top 10.
    best = np.argmax(dense, axis=1)
    assert np.mean([b in row for b, row in zip(best, items[:-1], strict=True)]) > 0.97
    assert (np.diff(scores[:-1], axis=1) <= 0).all()
    assert np.array_equal(items[-1], blend.popularity.top_items(10))  # a stranger gets popularity


def test_exclude_owned_reaches_past_what_the_customer_owns(blend: Blend, data: Baskets):
    users = np.arange(300)
    items, _ = blend.recommend(users, k=10, exclude_owned=True)
    owned = blend.repeat.matrix[users].toarray() > 0
    assert (items >= 0).all()
    assert not np.take_along_axis(owned, items, axis=1).any()


def test_candidate_learning_beats_popularity_and_repeat(data: Baskets):
    train, held = split_last_basket(data)
    users = np.arange(train.n_users)
    blend = Blend(als=ALSSignal(factors=16, iterations=4), validation_users=1000).fit(train)
    blend.index()
    recs, _ = blend.recommend(users, 10)
    ours = ranking_metrics_codes(recs, users, data.user[held], data.item[held], data.n_items, 10)["ndcg@10"]
    rep = RepeatPurchase().fit(train)
    rep_recs = top_k(rep.score(users) + 1e-6 * blend.popularity.share, 10)[0]
    theirs = ranking_metrics_codes(rep_recs, users, data.user[held], data.item[held], data.n_items, 10)
    pop = np.tile(blend.popularity.top_items(10), (len(users), 1))
    popular = ranking_metrics_codes(pop, users, data.user[held], data.item[held], data.n_items, 10)
    assert ours > theirs["ndcg@10"] + 0.02 and ours > popular["ndcg@10"] + 0.1, (ours, theirs, popular)


def test_clustered_als_candidates_hold_most_of_the_exact_top(data: Baskets):
    als = ALSSignal(factors=16, iterations=4, exact_items=100, cluster_items=300, clusters=32).fit(data)
    done: list[int] = []
    info = als.index(20, progress=done.append)
    assert info["als_exact"] == 0.0 and done[-1] == data.n_users
    assert als.candidate_recall(20, users=500) > 0.8
    # The table is what top_items reads now; every entry is a real item.
    table = als.top_items(np.arange(data.n_users), 20)
    assert table.shape == (data.n_users, 20) and (table >= 0).all() and (table < data.n_items).all()
    assert (als.top_items(np.array([-1]), 20) == -1).all()


def test_als_fold_in_gives_every_customer_factors(data: Baskets):
    als = ALSSignal(factors=16, iterations=4, fit_users=1000).fit(data)
    assert als.user_factors.shape == (data.n_users, 16)
    counts = RepeatPurchase().fit(data).counts
    # A customer's own items score above the catalogue's average, sampled or folded in.
    users = np.arange(data.n_users)
    own = np.asarray(counts.multiply(als.score(users)).sum(axis=1)).ravel() / np.diff(counts.indptr)
    assert np.mean(own > als.score(users).mean(axis=1)) > 0.95


def test_segment_top_orders_within_rows():
    rows = np.array([0, 0, 0, 2, 2])
    scores = np.array([0.1, 0.9, 0.5, 3.0, -1.0])
    pos, sc = segment_top(rows, scores, 3, 2)
    assert pos.tolist() == [[1, 2], [-1, -1], [3, 4]]
    assert sc[0].tolist() == [0.9, 0.5] and np.isneginf(sc[1]).all()


def test_ranking_metrics_codes_equal_the_reference():
    rng = np.random.default_rng(5)
    recs = rng.integers(0, 30, size=(50, 10))
    held_user = rng.integers(0, 50, size=200)
    held_item = rng.integers(0, 30, size=200)
    users = np.arange(50)
    fast = ranking_metrics_codes(recs, users, held_user, held_item, 30, 10)
    rated = sorted(set(held_user.tolist()))
    truth = [{str(i) for i in held_item[held_user == u]} for u in rated]
    slow = ranking_metrics([[str(i) for i in recs[u]] for u in rated], truth, 10)
    for key, value in slow.items():
        assert fast[key] == pytest.approx(value)
    assert fast["customers"] == len(rated)
