"""The new peers' inputs computed from a patlab export's block tables (numpy only, no GPU).

All of them start from the same fact: request r's token t lives in the pool slot
`table[r][t // page] * page + t % page` of the pools viewed as `[blocks * page, Hkv, d]`.

* radix_tree(): the token-level radix tree of the requests' slot sequences (FastTree's and DeFT's
  tree): a node is a maximal run of slots that the same set of requests reads, so the tree is
  derived from what the requests actually share (patlab's layout shares full blocks; partial
  blocks are each request's own), not from the export's segment names.
* kv_tree(): that tree as PAT's benchmark kernels want it (KVTreeNode objects: parent, id,
  seqlen, num_children, requests), with the virtual token numbering they assume (FastTree: the
  nodes' tokens concatenated in node order; DeFT: a dense `[R, max_len]` cache) and the map from
  that numbering to pool slots (remap()), applied to their metadata after their preparation.
* fa3_decode(): vLLM FA3's paged varlen inputs (cu_seqlens_q, seqused_k, block table).
* cascade_split(): vLLM's cascade: the blocks shared by every request (the common prefix pass)
  and the rest (the suffix pass).
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


def slot_rows(tables: list[list[int]], lengths: list[int], page: int) -> list[np.ndarray]:
    """Per request, the pool slot of each of its tokens in token order (int64)."""
    rows = []
    for t, n in zip(tables, lengths):
        pos = np.arange(int(n), dtype=np.int64)
        rows.append(np.asarray(t, dtype=np.int64)[pos // page] * page + pos % page)
    return rows


@dataclass
class RadixNode:
    """One node of the radix tree: the slots it holds and every request that reads them."""

    parent: int
    slots: np.ndarray
    requests: list[int]
    children: list[int] = field(default_factory=list)


def _common_run(rows: list[np.ndarray], reqs: list[int], start: int) -> int:
    """Length of the run of slots, from token `start`, that every request in `reqs` shares."""
    end = min(len(rows[r]) for r in reqs)
    first = rows[reqs[0]][start:end]
    n = len(first)
    for r in reqs[1:]:
        diff = np.flatnonzero(rows[r][start:end] != first)
        if diff.size:
            n = min(n, int(diff[0]))
    return n


def radix_tree(rows: list[np.ndarray]) -> list[RadixNode]:
    """The radix tree of the slot sequences, nodes in breadth-first order (parents first). Node 0
    is the root: the run every request shares, or a node of zero tokens when they share none.
    Raises ValueError when a request's slots are a prefix of another's (a request ending inside
    the tree: a decode batch of patlab's layout never has one)."""
    if not rows:
        raise ValueError("no requests")
    nodes: list[RadixNode] = []
    queue = deque([(-1, list(range(len(rows))), 0)])
    while queue:
        parent, reqs, start = queue.popleft()
        n = _common_run(rows, reqs, start) if len(reqs) > 1 else len(rows[reqs[0]]) - start
        idx = len(nodes)
        nodes.append(RadixNode(parent, rows[reqs[0]][start:start + n].copy(), sorted(reqs)))
        if parent >= 0:
            nodes[parent].children.append(idx)
        end = start + n
        if len(reqs) == 1:
            continue
        ended = [r for r in reqs if len(rows[r]) == end]
        if ended:
            raise ValueError(f"request {ended[0]}'s tokens are a prefix of another request's")
        groups: dict[int, list[int]] = {}
        for r in reqs:
            groups.setdefault(int(rows[r][end]), []).append(r)
        for first in sorted(groups):
            queue.append((idx, groups[first], end))
    return nodes


def path_of(nodes: list[RadixNode], r: int) -> list[int]:
    """Nodes from the root to request r's leaf."""
    leaf = next(i for i, nd in enumerate(nodes) if not nd.children and r in nd.requests)
    path = [leaf]
    while nodes[path[-1]].parent >= 0:
        path.append(nodes[path[-1]].parent)
    return path[::-1]


@dataclass
class KVTree:
    """PAT's benchmark tree description of an export, and the maps to pool slots."""

    parents: list[int]
    seqlens: list[int]
    num_children: list[int]
    requests: list[list[int]]
    kv_ptrs: list[int]            # FastTree: node n's tokens are virtual tokens kv_ptrs[n]..kv_ptrs[n+1]
    virtual_to_slot: np.ndarray   # FastTree's virtual token -> pool slot
    max_len: int                  # DeFT: the dense cache's row length
    dense_to_slot: np.ndarray     # DeFT's dense index r * max_len + t -> pool slot (-1 past a request's end)
    virtual_root: bool            # node 0 holds no tokens (the requests share no first token)

    def node_objects(self, node_class) -> list:
        """The tree as instances of `node_class` (PAT's KVTreeNode: parent, id, seqlen,
        num_children, requests)."""
        out = []
        for i, (p, n, c, reqs) in enumerate(zip(self.parents, self.seqlens, self.num_children, self.requests)):
            node = node_class()
            node.parent, node.id, node.seqlen, node.num_children, node.requests = p, i, n, c, list(reqs)
            out.append(node)
        return out


def kv_tree(tables: list[list[int]], lengths: list[int], page: int) -> KVTree:
    rows = slot_rows(tables, lengths, page)
    nodes = radix_tree(rows)
    seqlens = [len(nd.slots) for nd in nodes]
    max_len = max(int(n) for n in lengths)
    dense = np.full(len(rows) * max_len, -1, dtype=np.int64)
    for r, row in enumerate(rows):
        dense[r * max_len:r * max_len + len(row)] = row
    return KVTree(parents=[nd.parent for nd in nodes], seqlens=seqlens, num_children=[len(nd.children) for nd in nodes],
                  requests=[list(nd.requests) for nd in nodes], kv_ptrs=[0, *np.cumsum(seqlens).tolist()],
                  virtual_to_slot=np.concatenate([nd.slots for nd in nodes]).astype(np.int64),
                  max_len=max_len, dense_to_slot=dense, virtual_root=seqlens[0] == 0)


def remap(entries: np.ndarray, to_slot: np.ndarray) -> np.ndarray:
    """KV entries of a peer's metadata (its own token numbering, -1 padding kept) as pool slots."""
    e = np.asarray(entries, dtype=np.int64)
    out = np.full(e.shape, -1, dtype=np.int64)
    valid = e >= 0
    if np.any(e[valid] >= len(to_slot)):
        raise ValueError(f"KV entry {int(e[valid].max())} outside the {len(to_slot)} tokens of the map")
    out[valid] = to_slot[e[valid]]
    if np.any(out[valid] < 0):
        raise ValueError("a KV entry maps to no token (past a request's end)")
    return out


@dataclass
class PagedDecode:
    """FA3's paged varlen decode inputs: one query per request."""

    cu_seqlens_q: np.ndarray  # [R + 1] int32: 0, 1, ..., R
    seqused_k: np.ndarray     # [R] int32: the requests' lengths
    block_table: np.ndarray   # [R, max_blocks] int32, padded with block 0 (never read: past seqused_k)
    max_seqlen_k: int


def paged_decode(tables: list[list[int]], lengths: list[int], width: int | None = None) -> PagedDecode:
    R = len(tables)
    width = max(1, max(len(t) for t in tables)) if width is None else width
    bt = np.zeros((R, width), dtype=np.int32)
    for r, t in enumerate(tables):
        bt[r, :len(t)] = t
    return PagedDecode(cu_seqlens_q=np.arange(R + 1, dtype=np.int32),
                       seqused_k=np.asarray(lengths, dtype=np.int32), block_table=bt,
                       max_seqlen_k=int(max(lengths)))


@dataclass
class CascadeSplit:
    """vLLM's cascade: every query attends to the common prefix in one pass (all R queries as one
    sequence over `common_blocks` shared blocks) and to its own suffix in a second pass."""

    common_blocks: int
    common_prefix_len: int        # tokens: common_blocks * page
    prefix_block_table: np.ndarray  # [1, common_blocks] int32
    suffix: PagedDecode           # the requests' remaining blocks and lengths


def cascade_split(tables: list[list[int]], lengths: list[int], page: int) -> CascadeSplit:
    """The longest run of leading blocks every request shares, kept below every request's length
    so that each has at least one suffix token (vLLM caps it the same way); ValueError when no
    block is shared by all."""
    shortest = min(len(t) for t in tables)
    common = 0
    while common < shortest and all(t[common] == tables[0][common] for t in tables):
        common += 1
    common = min(common, (int(min(lengths)) - 1) // page)
    if common == 0:
        raise ValueError("no block is shared by every request (vLLM's cascade needs a common prefix)")
    prefix_len = common * page
    suffix = paged_decode([t[common:] for t in tables], [int(n) - prefix_len for n in lengths])
    return CascadeSplit(common_blocks=common, common_prefix_len=prefix_len,
                        prefix_block_table=np.asarray([tables[0][:common]], dtype=np.int32), suffix=suffix)


def floor_us(unique_bytes: float, copy_gbs: float) -> float:
    """The time of moving the unique bytes once at the copy bandwidth of the same run (us)."""
    return unique_bytes / (copy_gbs * 1e9) * 1e6


def x_of_floor(time_us: float | None, unique_bytes: float | None, copy_gbs: float | None) -> float | None:
    """time / (unique bytes / copy bandwidth): 1 is the memory floor, larger is slower."""
    if not time_us or not unique_bytes or not copy_gbs:
        return None
    return time_us / floor_us(unique_bytes, copy_gbs)
