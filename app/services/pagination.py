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
    query = select(id_column).where(*conditions).limit(limit + 1)
    query = query.order_by(id_column.desc() if newest_first else id_column)
    if after is None:
        query = query.offset((args["page"] - 1) * limit)
    else:
        query = query.where(id_column < after if newest_first else id_column > after)
    ids = list(db.session.scalars(query))
    total = _total(id_column, conditions, count_key)
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


def _total(id_column: ColumnElement, conditions: Sequence[ColumnElement], key: Hashable) -> int:
    """The number of matching rows; a large one is reused for ZDM_LIST_COUNT_SECONDS."""
    config = current_app.config
    cache: dict = current_app.extensions.setdefault("zdm_list_counts", {})
    now = time.monotonic()
    cached = cache.get(key)
    if cached is not None and now - cached[0] < config["ZDM_LIST_COUNT_SECONDS"]:
        return cached[1]
    total = db.session.scalar(select(func.count()).select_from(id_column.table).where(*conditions))
    cache.pop(key, None)
    if total >= config["ZDM_LIST_EXACT_COUNT"]:
        if len(cache) >= _COUNT_CACHE_SIZE:
            cache.pop(next(iter(cache)))  # the oldest entry
        cache[key] = (now, total)
    return total
