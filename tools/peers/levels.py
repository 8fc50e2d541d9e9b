"""Cascade levels from a patlab token tree (pure Python: no numpy, no torch).

FlashInfer's ``MultiLevelCascadeAttentionWrapper`` runs one prefill-style launch per *level*
and merges the levels' partial results. At each level the queries are split into groups of
*consecutive* queries; a group attends to one list of KV pages. The mapping used here follows
how patlab's layout shares blocks (kv_cache.cpp): a full block is shared by every request whose
path passes through the segment that holds the block's last token.

* Levels: ``L = max(2, depth of the tree)``. Level ``k < L-1`` holds, for each segment ``s`` at
  depth ``k``, the full blocks whose last token lies in ``s``; its group is every request that
  passes through ``s`` without ending there. The last level holds each request's own blocks:
  the full blocks of its own last segment and its partial last block (one group per request).
* Order: requests are sorted by their path (depth-first order of the tree), so every group is a
  run of consecutive queries. The caller permutes q with ``order`` and un-permutes the output
  (``output[order[i]] = cascade_output[i]``).
* Empty groups: a request can have nothing at a level ``k < L-1`` (its path is shorter than the
  tree's depth, the level's segment is its own last segment, or the segment is shorter than a
  block and holds no block's last token). Every query must still be covered at every level
  (FlashInfer merges all rows of every level), so such queries get a group with zero pages
  (kv_len 0, ``last_page_len`` 0): attention over no keys, the merge's identity (o = 0,
  lse = -inf). Consecutive empty queries share one such group.

Every group's block lists are checked to be identical across its requests (the physical
sharing the mapping relies on); a mismatch raises ``ValueError``.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Level:
    """One cascade level, in FlashInfer's plan() terms (indices in the permuted query order)."""

    qo_indptr: list[int] = field(default_factory=list)        # group g: queries [qo_indptr[g], qo_indptr[g+1])
    kv_indptr: list[int] = field(default_factory=list)        # group g: pages kv_indices[kv_indptr[g]:kv_indptr[g+1]]
    kv_indices: list[int] = field(default_factory=list)
    last_page_len: list[int] = field(default_factory=list)    # tokens in the group's last page (0: no pages)
    tokens: list[int] = field(default_factory=list)           # KV tokens of each group
    label: list[str] = field(default_factory=list)            # segment name, "own" or "empty"

    @property
    def groups(self) -> int:
        return len(self.qo_indptr) - 1

    @property
    def empty_groups(self) -> int:
        return sum(1 for t in self.tokens if t == 0)


@dataclass
class Cascade:
    """Levels of a batch and the query order they assume."""

    levels: list[Level]
    order: list[int]          # order[i] = request whose query is the i-th row of the permuted batch
    page_size: int

    def describe(self) -> str:
        parts = []
        for k, lv in enumerate(self.levels):
            parts.append(f"L{k}: {lv.groups} groups ({lv.empty_groups} empty), {len(lv.kv_indices)} pages")
        return f"{len(self.levels)} levels: " + "; ".join(parts)

    def pages_read(self) -> int:
        """Pages the cascade reads (each group's pages once): its KV traffic in pages."""
        return sum(len(lv.kv_indices) for lv in self.levels)


def segment_depths_and_ends(parents: list[int], tokens: list[int]) -> tuple[list[int], list[int]]:
    """Per segment: its depth (roots 0) and the token index one past its end in any path."""
    n = len(parents)
    depth = [-1] * n
    end = [-1] * n

    def resolve(s: int) -> None:
        chain = []
        while s >= 0 and depth[s] < 0:
            chain.append(s)
            s = parents[s]
        for c in reversed(chain):
            p = parents[c]
            depth[c] = 0 if p < 0 else depth[p] + 1
            end[c] = (0 if p < 0 else end[p]) + tokens[c]

    for s in range(n):
        resolve(s)
    return depth, end


def block_levels(path: list[int], length: int, page: int, depth: list[int], end: list[int],
                 num_levels: int) -> list[int]:
    """Level of each block of one request (see the module's docstring)."""
    blocks = (length + page - 1) // page
    out = []
    seg = 0
    for i in range(blocks):
        full = (i + 1) * page <= length
        last = min((i + 1) * page, length) - 1
        while end[path[seg]] <= last:
            seg += 1
        if not full or seg == len(path) - 1:
            out.append(num_levels - 1)
        else:
            out.append(depth[path[seg]])
    return out


def build_cascade(paths: list[list[int]], parents: list[int], tokens: list[int], names: list[str],
                  lengths: list[int], block_tables: list[list[int]], page: int,
                  min_levels: int = 2) -> Cascade:
    """Maps a batch onto cascade levels. `block_tables[r]` lists request r's physical blocks
    (no padding); `paths[r]` its segments, root first."""
    R = len(paths)
    if not (len(lengths) == len(block_tables) == R):
        raise ValueError("paths, lengths and block tables disagree on the number of requests")
    depth, end = segment_depths_and_ends(parents, tokens)
    tree_depth = max(len(p) for p in paths)
    L = max(min_levels, tree_depth)
    order = sorted(range(R), key=lambda r: (paths[r], r))

    # Per request and level: the blocks it reads there, and the key of its group.
    per_level: list[list[list[int]]] = [[[] for _ in range(L)] for _ in range(R)]
    for r in range(R):
        if sum(tokens[s] for s in paths[r]) != lengths[r]:
            raise ValueError(f"request {r}: path tokens {sum(tokens[s] for s in paths[r])} != length {lengths[r]}")
        table = block_tables[r]
        if len(table) != (lengths[r] + page - 1) // page:
            raise ValueError(f"request {r}: {len(table)} blocks for {lengths[r]} tokens at page {page}")
        for b, lv in zip(table, block_levels(paths[r], lengths[r], page, depth, end, L)):
            per_level[r][lv].append(b)

    levels = []
    for k in range(L):
        lv = Level(qo_indptr=[0], kv_indptr=[0])
        seen: set = set()
        i = 0
        while i < R:
            r = order[i]
            blocks = per_level[r][k]
            if k == L - 1:
                key, j = ("own", r), i + 1
            elif not blocks:
                key, j = None, i + 1
                while j < R and not per_level[order[j]][k]:
                    j += 1
            else:
                key, j = ("seg", paths[r][k]), i + 1
                while j < R and per_level[order[j]][k] and len(paths[order[j]]) > k and paths[order[j]][k] == paths[r][k]:
                    if per_level[order[j]][k] != blocks:
                        raise ValueError(f"level {k}: requests {r} and {order[j]} share segment "
                                         f"{names[paths[r][k]]!r} but not its blocks")
                    j += 1
            if key is not None and key[0] == "seg":
                if key in seen:
                    raise ValueError(f"level {k}: the requests of segment {names[key[1]]!r} are not consecutive")
                seen.add(key)
            lv.qo_indptr.append(j)
            lv.kv_indices.extend(blocks)
            lv.kv_indptr.append(len(lv.kv_indices))
            ntok = _tokens_at_level(per_level, r, k, lengths[r], block_tables[r], page) if blocks else 0
            lv.tokens.append(ntok)
            if not blocks:
                lv.last_page_len.append(0)
                lv.label.append("empty")
            else:
                lv.last_page_len.append(ntok - (len(blocks) - 1) * page)
                lv.label.append("own" if key[0] == "own" else names[key[1]])
            i = j
        levels.append(lv)
    return Cascade(levels=levels, order=order, page_size=page)


def _tokens_at_level(per_level, r: int, k: int, length: int, table: list[int], page: int) -> int:
    """Tokens in request r's blocks at level k: full pages, except the request's partial block."""
    blocks = per_level[r][k]
    n = len(blocks) * page
    if table and table[-1] == blocks[-1] and length % page:
        n -= page - length % page
    return n


def check_cascade(c: Cascade, lengths: list[int], block_tables: list[list[int]]) -> None:
    """Asserts the properties FlashInfer needs and that the levels cover every request's blocks
    exactly once: raises ValueError naming the first fault."""
    R = len(lengths)
    got: list[list[int]] = [[] for _ in range(R)]
    tokens = [0] * R
    for k, lv in enumerate(c.levels):
        if lv.qo_indptr[0] != 0 or lv.qo_indptr[-1] != R:
            raise ValueError(f"level {k}: qo_indptr does not cover all {R} queries")
        if any(b <= a for a, b in zip(lv.qo_indptr, lv.qo_indptr[1:])):
            raise ValueError(f"level {k}: a group without queries")
        for g in range(lv.groups):
            pages = lv.kv_indices[lv.kv_indptr[g]:lv.kv_indptr[g + 1]]
            lp = lv.last_page_len[g]
            if pages and not (1 <= lp <= c.page_size):
                raise ValueError(f"level {k} group {g}: last_page_len {lp} outside [1, {c.page_size}]")
            if not pages and lp != 0:
                raise ValueError(f"level {k} group {g}: no pages but last_page_len {lp}")
            for i in range(lv.qo_indptr[g], lv.qo_indptr[g + 1]):
                r = c.order[i]
                got[r].extend(pages)
                tokens[r] += lv.tokens[g]
    for r in range(R):
        if sorted(got[r]) != sorted(block_tables[r]):
            raise ValueError(f"request {r}: the levels read blocks {sorted(got[r])}, its table has {sorted(block_tables[r])}")
        if tokens[r] != lengths[r]:
            raise ValueError(f"request {r}: the levels cover {tokens[r]} tokens, the request has {lengths[r]}")
