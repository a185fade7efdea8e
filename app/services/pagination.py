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
    if after is None:
        query = query.offset((args["page"] - 1) * limit)
    else:
        query = query.where(id_column < after if newest_first else id_column > after)
    rows = db.session.execute(query).all()
    ids = [row[0] for row in rows]
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
