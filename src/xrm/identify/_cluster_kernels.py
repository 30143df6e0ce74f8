"""Compiled constrained clustering (numba): the union-find over scored pairs with cannot-link checks.

:func:`~xrm.identify._probabilistic.merge_probabilistic` joins components pair by pair, strongest
first, refusing a join when a cannot-link rule holds between any record key of one side and any
of the other that no record of either side outvotes. In Python that loop was two thirds of the
graph step at 1M records (dicts of dicts, a cache lookup per key pair). Here the same loop runs
over int arrays:

- ``parent``, ``nrec`` (records per root, the union's size rule), ``nnamed`` (records with a
  surname per root, for the e-mail-name picks);
- each root's distinct record keys as a linked list of entries (``head``, ``tail``, ``enext``,
  ``ekey``, ``enode``: key id and its first record node), in the order the Python dicts kept:
  the bigger side's keys, then the smaller side's new ones;
- an open-addressing table of the key pairs asked so far (``hkey`` = a * n_keys + b) with the
  conflict's text id (``hconf``) and the vouching (``hvouch``).

The rules themselves (:func:`~xrm.identify._conflicts.conflict`, ``vouches``) stay in Python,
with the strings: when the kernel meets a key pair it has no answer for, it stops before that
scored pair and hands back the pairs it needs, those of the pair it stopped at and of the next
``lookahead`` pairs (their sides as they stand: most will be asked as they are), and Python
answers them in one batch and resumes it. A run at 1M records stops a few dozen times.

Callers import this module lazily (numba at the top), as the network capability does.
"""

from __future__ import annotations

import numba
import numpy as np

__all__ = ["CHECKED", "DRY_RUN", "JOIN", "UNKNOWN", "fill", "grow", "new_table", "roots", "run_pairs"]

_jit = numba.njit(cache=True, nogil=True)

# Outcome codes, as in _probabilistic.
_LINKED, _REFUSED, _SAME, _REVIEW, _HOUSEHOLD = 0, 1, 3, 4, 5
# Modes of run_pairs: join without checks (accepted in review), join unless a cannot-link
# refuses (scored pairs above the threshold, e-mail-name picks), check only (the grey zone).
JOIN, CHECKED, DRY_RUN = 0, 1, 2
# Table values: not asked yet, asked in this batch; conflicts: -1 none, >= 0 the text id;
# vouching: 0 / 1.
UNKNOWN, PENDING = -3, -2
_GOLDEN = np.uint64(0x9E3779B97F4A7C15)


def new_table(expected: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """An empty key-pair table for about ``expected`` pairs (power-of-two size, load <= 0.5)."""
    size = 1 << max(int(2 * max(expected, 1024) - 1).bit_length(), 10)
    return (np.full(size, -1, dtype=np.int64), np.full(size, UNKNOWN, dtype=np.int32),
            np.full(size, UNKNOWN, dtype=np.int8))


@_jit
def _slot(hkey: np.ndarray, code: int) -> int:  # pragma: no cover
    mask = len(hkey) - 1
    h = np.uint64(code) * _GOLDEN
    i = np.int64((h ^ (h >> np.uint64(31))) & np.uint64(mask))
    while hkey[i] != code and hkey[i] != -1:
        i = (i + 1) & mask
    return int(i)


@_jit
def _grow(hkey: np.ndarray, hconf: np.ndarray, hvouch: np.ndarray,
          nkey: np.ndarray, nconf: np.ndarray, nvouch: np.ndarray) -> None:  # pragma: no cover
    for i in range(len(hkey)):
        if hkey[i] != -1:
            s = _slot(nkey, hkey[i])
            nkey[s] = hkey[i]
            nconf[s] = hconf[i]
            nvouch[s] = hvouch[i]


def grow(table: tuple[np.ndarray, np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The same table at twice the size."""
    new = new_table(len(table[0]))
    _grow(*table, *new)
    return new


@_jit
def fill(hkey: np.ndarray, values: np.ndarray, codes: np.ndarray,
         answers: np.ndarray) -> None:  # pragma: no cover
    """Answers of a batch into ``values`` (``hconf`` or ``hvouch``)."""
    for i in range(len(codes)):
        values[_slot(hkey, codes[i])] = answers[i]


@_jit
def _find(parent: np.ndarray, x: int) -> int:  # pragma: no cover
    r = x
    while parent[r] != r:
        r = parent[r]
    while parent[x] != r:
        nxt = parent[x]
        parent[x] = r
        x = nxt
    return r


@_jit
def roots(parent: np.ndarray) -> np.ndarray:  # pragma: no cover
    """Every label's root."""
    out = np.empty(len(parent), dtype=np.int64)
    for i in range(len(parent)):
        out[i] = _find(parent, i)
    return out


@_jit
def _ask(hkey: np.ndarray, values: np.ndarray, which: int, code: int, req: np.ndarray,
         state: np.ndarray) -> int:  # pragma: no cover
    """The table's answer for ``code`` (UNKNOWN/PENDING when not known); asks for it when the
    batch has room. ``which``: 0 conflicts (``hconf``), 1 vouching (``hvouch``); ``state``:
    [n conflict requests, n vouch requests, slots used, looked ahead up to]."""
    s = _slot(hkey, code)
    if hkey[s] == -1:
        hkey[s] = code
        state[2] += 1
    v = values[s]
    if v == UNKNOWN:
        n = state[which]
        if n < req.shape[1]:
            req[which, n] = code
            state[which] = n + 1
            values[s] = PENDING
    return v


@_jit
def _outvote(e: int, skip: int, other: int, first: bool, nk: int, enext: np.ndarray,
             ekey: np.ndarray, hkey: np.ndarray, hvouch: np.ndarray, req: np.ndarray,
             state: np.ndarray) -> int:  # pragma: no cover
    """Whether a key of the list from entry ``e`` (other than ``skip``) vouches for the pair with
    ``other`` (as ``(key, other)`` when ``first``, else ``(other, key)``): 1 yes, -1 an answer is
    still open (asked for), 0 no."""
    open_vouch = False
    while e != -1:
        k2 = ekey[e]
        if k2 != skip:
            v = _ask(hkey, hvouch, 1, k2 * nk + other if first else other * nk + k2, req, state)
            if v == 1:
                return 1
            if v < 0:
                open_vouch = True
        e = enext[e]
    return -1 if open_vouch else 0


@_jit
def _check(ra: int, rb: int, nk: int, head: np.ndarray, enext: np.ndarray, ekey: np.ndarray,
           enode: np.ndarray, hkey: np.ndarray, hconf: np.ndarray, hvouch: np.ndarray, req: np.ndarray,
           state: np.ndarray, found: np.ndarray) -> int:  # pragma: no cover
    """The first cannot-link between the roots' keys that no key of either side outvotes, as
    ``_probabilistic._cannot_link`` does: 1 with ``found`` = (text id, node x, node y), 0 for
    none, -1 when an answer needed first is not in the table yet (asked for)."""
    unknown = False
    ea = head[ra]
    while ea != -1:
        ka = ekey[ea]
        eb = head[rb]
        while eb != -1:
            kb = ekey[eb]
            c = _ask(hkey, hconf, 0, ka * nk + kb, req, state)
            if c < -1:
                unknown = True
            elif c >= 0:
                va = _outvote(head[ra], ka, kb, True, nk, enext, ekey, hkey, hvouch, req, state)
                vb = 0 if va == 1 else _outvote(head[rb], kb, ka, False, nk, enext, ekey, hkey, hvouch,
                                                req, state)
                if va != 1 and vb != 1:
                    if va == -1 or vb == -1 or unknown:
                        return -1
                    found[0] = c
                    found[1] = enode[ea]
                    found[2] = enode[eb]
                    return 1
            eb = enext[eb]
        ea = enext[ea]
    return -1 if unknown else 0


@_jit
def _union(ra: int, rb: int, parent: np.ndarray, nrec: np.ndarray, nnamed: np.ndarray,
           head: np.ndarray, tail: np.ndarray, enext: np.ndarray,
           ekey: np.ndarray) -> None:  # pragma: no cover
    if nrec[ra] >= nrec[rb]:
        big, small = ra, rb
    else:
        big, small = rb, ra
    parent[small] = big
    nrec[big] += nrec[small]
    nnamed[big] += nnamed[small]
    last = tail[big]  # the big side's own keys end here: the small side's are distinct already
    e = head[small]
    while e != -1:
        nxt = enext[e]
        k = ekey[e]
        dup = False
        f = head[big]
        while f != -1:
            if ekey[f] == k:
                dup = True
                break
            if f == last:
                break
            f = enext[f]
        if not dup:
            enext[e] = -1
            if tail[big] == -1:
                head[big] = e
            else:
                enext[tail[big]] = e
            tail[big] = e
        e = nxt
    head[small] = -1
    tail[small] = -1


@_jit
def run_pairs(mode: int, la: np.ndarray, lb: np.ndarray, start: int, lookahead: int, nk: int,
              code: np.ndarray, why: np.ndarray, parent: np.ndarray, nrec: np.ndarray, nnamed: np.ndarray,
              head: np.ndarray, tail: np.ndarray, enext: np.ndarray, ekey: np.ndarray, enode: np.ndarray,
              hkey: np.ndarray, hconf: np.ndarray, hvouch: np.ndarray, req: np.ndarray,
              state: np.ndarray) -> int:  # pragma: no cover
    """Pairs of labels ``la[i], lb[i]`` from ``start`` on, in ``mode``; outcome codes into
    ``code[i]`` and a refusal's (text id, node x, node y) into ``why[i]``. Returns the index it
    stopped at: ``len(la)`` when done, else answers are asked for in ``req`` (``state[0]``
    conflicts, ``state[1]`` vouchings) or the table is over half full."""
    n = len(la)
    found = np.empty(3, dtype=np.int64)
    limit = len(hkey) // 2
    i = start
    while i < n:
        if state[2] > limit:
            return i
        ra = _find(parent, la[i])
        rb = _find(parent, lb[i])
        if ra == rb:
            code[i] = _SAME if mode == DRY_RUN else _LINKED
            i += 1
            continue
        if mode == JOIN:
            _union(ra, rb, parent, nrec, nnamed, head, tail, enext, ekey)
            code[i] = _LINKED
            i += 1
            continue
        r = _check(ra, rb, nk, head, enext, ekey, enode, hkey, hconf, hvouch, req, state, found)
        if r < 0:
            # Ask for the next pairs' answers too, their sides as they stand now, beyond those
            # asked ahead before (``state[3]``): each pair is looked ahead at once.
            j = max(i + 1, state[3])
            # Not past half the table either: it starts small and grows, and a full one never
            # finds a free slot.
            while (j < n and j <= i + lookahead and state[0] < req.shape[1] and state[1] < req.shape[1]
                   and state[2] <= limit):
                rj, rk = _find(parent, la[j]), _find(parent, lb[j])
                if rj != rk:
                    _check(rj, rk, nk, head, enext, ekey, enode, hkey, hconf, hvouch, req, state, found)
                j += 1
            state[3] = j
            return i
        if r == 1:
            code[i] = _REFUSED if mode == CHECKED else _HOUSEHOLD
            why[i, 0] = found[0]
            why[i, 1] = found[1]
            why[i, 2] = found[2]
        elif mode == CHECKED:
            _union(ra, rb, parent, nrec, nnamed, head, tail, enext, ekey)
            code[i] = _LINKED
        else:
            code[i] = _REVIEW
        i += 1
    return n
