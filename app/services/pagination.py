"""`page`/`limit` (or the `after` cursor) over a list, and the `pagination` block every
list returns.

Small lists (users, the inventory) page their query with OFFSET: `paginate`.

The lists that grow with the estate (jobs, runs, recovery points) are paged by id:
`page_of_ids`. Their filters are conditions on the list's own table (filters naming other
tables are resolved to ids first), so the count and the page of ids come from one index of
that table, and the rows of the page are then loaded by id with what they show.

- `hasNextPage` is read with the page (one id more than the limit), `hasPreviousPage` is
  `page > 1`, or with `after` whether an item precedes it: both always exact.
- `totalItems`/`totalPages`: counted on every request while the count is below
  `ZDM_LIST_EXACT_COUNT`; a larger count is reused by the worker process for up to
  `ZDM_LIST_COUNT_SECONDS`, so it may lag that long behind jobs registered or deleted
  meanwhile (docs/decisions.md, "Lists and registration at scale").
- `page=N` with an offset of `ZDM_LIST_EXACT_COUNT` items or more starts, when it can,
  from where a page of the same list and filters began (an anchor: offset and id) instead
  of walking every item before it; an anchor is used only while the walk from the start
  it derives from is less than `ZDM_LIST_COUNT_SECONDS` old, so for that long such a page
  may start as many items off as were added before it or left the list meanwhile (new
  runs and points come first in their lists). The items are always current, live and in
  order; `ZDM_LIST_COUNT_SECONDS=0` walks every time.
- `after=<id>` (keyset): the items that follow the item `<id>` in the list's order, found
  through the index whatever the depth; `currentPage` is then null (counting the items
  before it is the cost the cursor avoids).
"""

from __future__ import annotations

import math
import time
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

from flask import current_app
from sqlalchemy import ColumnElement, Select, func, select

from app.extensions import db

_COUNT_CACHE_SIZE = 1024
_ANCHORS_PER_LIST = 64


def paginate(query: Select, page: int, limit: int) -> tuple[list, dict]:
    total = db.session.scalar(db.select(func.count()).select_from(query.order_by(None).subquery()))
    items = db.session.scalars(query.limit(limit).offset((page - 1) * limit)).all()
    pages = math.ceil(total / limit) if total else 0
    return list(items), {
        "currentPage": page,
        "totalPages": pages,
        "totalItems": total,
        "itemsPerPage": limit,
        "hasNextPage": page < pages,
        "hasPreviousPage": page > 1,
    }


@dataclass(frozen=True)
class IdPage:
    ids: list[int]
    pagination: dict


def page_of_ids(
    id_column: ColumnElement,
    conditions: Sequence[ColumnElement],
    args: dict,
    count_key: Hashable,
    *,
    newest_first: bool = False,
) -> IdPage:
    """The ids of the page `args` asks for (`page`, `limit`, optional `after`) among the
    rows of `id_column`'s table matching `conditions`, in id order (descending when
    `newest_first`). `count_key` names the list and its filters for the count cache."""
    limit, after = args["limit"], args.get("after")
    counter = select(func.count()).select_from(id_column.table).where(*conditions)
    total = _reused_count(count_key)
    # Without a count to reuse, the page's ids bring it along: one round trip, one snapshot.
    columns = [id_column] if total is not None else [id_column, counter.scalar_subquery()]
    query = select(*columns).where(*conditions).limit(limit + 1)
    query = query.order_by(id_column.desc() if newest_first else id_column)
    offset, walked_at = (args["page"] - 1) * limit, time.monotonic()
    if after is None:
        anchor = _reused_anchor(count_key, offset)
        if anchor is not None:  # walk on from the id a recent page started at
            anchor_offset, anchor_id, walked_at = anchor
            from_anchor = id_column <= anchor_id if newest_first else id_column >= anchor_id
            query = query.where(from_anchor).offset(offset - anchor_offset)
        else:
            query = query.offset(offset)
    else:
        query = query.where(id_column < after if newest_first else id_column > after)
    rows = db.session.execute(query).all()
    ids = [row[0] for row in rows]
    if after is None and ids:
        _remember_anchor(count_key, offset, ids[0], walked_at)
    if total is None:
        total = rows[0][1] if rows else db.session.scalar(counter)
        _remember_count(count_key, total)
    pages = math.ceil(total / limit) if total else 0
    if after is None:
        current, has_previous = args["page"], args["page"] > 1
    else:
        current = None
        before = id_column >= after if newest_first else id_column <= after
        earlier = db.session.scalar(select(id_column).where(*conditions, before).limit(1))
        has_previous = earlier is not None
    return IdPage(
        ids[:limit],
        {
            "currentPage": current,
            "totalPages": pages,
            "totalItems": total,
            "itemsPerPage": limit,
            "hasNextPage": len(ids) > limit,
            "hasPreviousPage": has_previous,
        },
    )


def _reused_anchor(key: Hashable, offset: int) -> tuple[int, int, float] | None:
    """The nearest (offset, id, walked at) at or before `offset` where a page of the same
    list and filters started, found by a walk from the list's start less than
    ZDM_LIST_COUNT_SECONDS ago; only for offsets of ZDM_LIST_EXACT_COUNT or more
    (shallower pages are always walked from the start)."""
    config = current_app.config
    if offset < config["ZDM_LIST_EXACT_COUNT"] or offset == 0:
        return None
    anchors = current_app.extensions.setdefault("zdm_list_anchors", {}).get(key)
    if not anchors:
        return None
    fresh_after = time.monotonic() - config["ZDM_LIST_COUNT_SECONDS"]
    best = None
    for anchor_offset, (made, anchor_id) in anchors.items():
        if (
            made > fresh_after
            and anchor_offset <= offset
            and (best is None or anchor_offset > best[0])
        ):
            best = (anchor_offset, anchor_id, made)
    return best


def _remember_anchor(key: Hashable, offset: int, first_id: int, walked_at: float) -> None:
    """Where a deep page started, for the next deep pages of the same list and filters.
    `walked_at`: when the walk from the list's start it derives from was made (a page
    found from an anchor does not make that anchor any younger)."""
    config = current_app.config
    if offset < config["ZDM_LIST_EXACT_COUNT"] or offset == 0:
        return
    lists: dict = current_app.extensions.setdefault("zdm_list_anchors", {})
    anchors = lists.pop(key, None) or {}
    lists[key] = anchors  # the most recently used list last
    if len(lists) > _COUNT_CACHE_SIZE:
        lists.pop(next(iter(lists)))  # the least recently used list
    fresh_after = time.monotonic() - config["ZDM_LIST_COUNT_SECONDS"]
    if walked_at <= fresh_after:
        return
    for stale in [o for o, (made, _id) in anchors.items() if made <= fresh_after]:
        del anchors[stale]
    anchors.pop(offset, None)
    if len(anchors) >= _ANCHORS_PER_LIST:
        anchors.pop(next(iter(anchors)))  # the oldest
    anchors[offset] = (walked_at, first_id)


def _reused_count(key: Hashable) -> int | None:
    """A large count made less than ZDM_LIST_COUNT_SECONDS ago for the same list and filters."""
    cached = current_app.extensions.setdefault("zdm_list_counts", {}).get(key)
    if (
        cached is not None
        and time.monotonic() - cached[0] < current_app.config["ZDM_LIST_COUNT_SECONDS"]
    ):
        return cached[1]
    return None


def _remember_count(key: Hashable, total: int) -> None:
    """Counts of ZDM_LIST_EXACT_COUNT rows or more are kept for reuse; smaller ones are
    cheap and always counted."""
    cache: dict = current_app.extensions["zdm_list_counts"]
    cache.pop(key, None)
    if total >= current_app.config["ZDM_LIST_EXACT_COUNT"]:
        if len(cache) >= _COUNT_CACHE_SIZE:
            cache.pop(next(iter(cache)))  # the oldest entry
        cache[key] = (time.monotonic(), total)
