"""`page`/`limit` over a query, and the `pagination` block every list returns."""

import math

from sqlalchemy import Select, func

from app.extensions import db


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
