"""What anybody may know about acts: the calls the parcel status and location check use.

Only public fields ever leave here: number, date, type, status, purpose, validity and
the cadastral numbers. Nothing reads ``protected.act_applicant``, so no applicant data
can leak through these functions whoever calls them.

Status is *effective* status on a date: an issued or extended act whose validity ended
before that date is reported as expired even if nobody changed the stored row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

# The SQL of the effective status and end of validity of act ``a`` on date ``:as_of``.
VALID_END_SQL = "COALESCE(a.extended_until, a.valid_until)"
EFFECTIVE_STATUS_SQL = (
    "CASE WHEN a.status IN ('issued', 'extended') "
    f"AND {VALID_END_SQL} < CAST(:as_of AS date) THEN 'expired' ELSE a.status END"
)
PUBLIC_FIELDS = (
    "id",
    "kind",
    "number",
    "issued_on",
    "status",
    "purpose",
    "valid_until",
    "cadastral_numbers",
)


def public_acts_for_parcels(
    conn: Connection, parcel_ids: Sequence[int], as_of: date | None
) -> list[dict[str, Any]]:
    """Acts about these imobile (any version of them), public fields only, newest first.

    Links point at the parcel version valid when the act was issued; the caller usually
    holds today's versions, so acts are matched through the cadastral number of the
    imobil within its UAT. With ``as_of`` only acts issued by then are listed, with
    their status on that day.
    """
    if not parcel_ids:
        return []
    rows = conn.execute(
        sa.text(
            f"""
            WITH wanted AS (
                SELECT DISTINCT uat_siruta, cadastral_number FROM cadastre.parcel
                WHERE id = ANY(CAST(:ids AS bigint[]))
            ), acts AS (
                SELECT DISTINCT ap.act_id FROM permits.act_parcel ap
                JOIN permits.act a ON a.id = ap.act_id
                JOIN wanted w ON w.cadastral_number = ap.cadastral_number
                    AND w.uat_siruta = a.uat_siruta
            )
            SELECT a.id, a.kind, a.number, a.issued_on,
                   {EFFECTIVE_STATUS_SQL} AS status, a.purpose,
                   {VALID_END_SQL} AS valid_until,
                   ARRAY(SELECT l.cadastral_number FROM permits.act_parcel l
                         WHERE l.act_id = a.id ORDER BY l.is_primary DESC, l.id)
                       AS cadastral_numbers
            FROM permits.act a JOIN acts ON acts.act_id = a.id
            WHERE a.status <> 'requested'
              AND (CAST(:limit_date AS date) IS NULL OR a.issued_on <= CAST(:limit_date AS date))
            ORDER BY a.issued_on DESC NULLS LAST, a.id DESC
            """  # noqa: S608  (fragments are constants of this module)
        ),
        {
            "ids": list(parcel_ids),
            "as_of": as_of or date.today(),
            "limit_date": as_of,
        },
    ).mappings()
    return [dict(row) for row in rows]


def valid_certificate_for(
    conn: Connection, cadastral_numbers: Sequence[str], on_date: date
) -> dict[str, Any] | None:
    """A CU valid on ``on_date`` whose linked imobile include all these numbers.

    The one lasting longest is returned (public fields), or None. This is the rule an
    AC/AD must satisfy on its issue date; cancelled, only requested or lapsed
    certificates do not count.
    """
    numbers = sorted({number.strip() for number in cadastral_numbers if number.strip()})
    if not numbers:
        return None
    row = (
        conn.execute(
            sa.text(
                f"""
                SELECT a.id, a.kind, a.number, a.issued_on,
                       {EFFECTIVE_STATUS_SQL} AS status, a.purpose,
                       {VALID_END_SQL} AS valid_until,
                       ARRAY(SELECT l.cadastral_number FROM permits.act_parcel l
                             WHERE l.act_id = a.id ORDER BY l.is_primary DESC, l.id)
                           AS cadastral_numbers
                FROM permits.act a
                WHERE a.kind = 'CU' AND a.status IN ('issued', 'extended')
                  AND a.issued_on <= CAST(:as_of AS date)
                  AND {VALID_END_SQL} >= CAST(:as_of AS date)
                  AND (SELECT count(DISTINCT l.cadastral_number) FROM permits.act_parcel l
                       WHERE l.act_id = a.id
                         AND l.cadastral_number = ANY(CAST(:numbers AS text[])))
                      = :wanted
                ORDER BY {VALID_END_SQL} DESC, a.id DESC
                LIMIT 1
                """  # noqa: S608  (fragments are constants of this module)
            ),
            {"as_of": on_date, "numbers": numbers, "wanted": len(numbers)},
        )
        .mappings()
        .one_or_none()
    )
    return dict(row) if row is not None else None
