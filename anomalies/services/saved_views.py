"""Saved views of the triage list: the four built-in ones and those people saved (``SavedView``).

A view is a query string of the anomaly changelist. Built-in views are data in code; the
saved ones are rows, personal or shared. ``saved_views_for_user`` is the one query that reads
them for the bar above the list.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qsl, urlencode

from django.db.models import Q

from anomalies.models import SavedView

# Parameters that do not change which rows a view shows.
IGNORED_PARAMETERS = frozenset({"p", "_changelist_filters", "e"})
OPEN_STATUSES = "open,acknowledged"


@dataclass(frozen=True)
class BuiltInView:
    """A view every user has: ``filters`` (a query string) and an optional sort column."""

    name: str
    filters: str
    order_by: str = ""  # a list column's name, "-" first for descending
    description: str = ""


BUILT_IN_VIEWS: tuple[BuiltInView, ...] = (
    BuiltInView(
        "My stores",
        f"stores=mine&status__in={OPEN_STATUSES}",
        description="Open and acknowledged findings of the stores listed in your store access.",
    ),
    BuiltInView(
        "New today",
        "new=latest",
        description="First raised on the latest detection day (today or the newest with data).",
    ),
    BuiltInView(
        "Critical money at risk",
        f"severity__exact=critical&status__in={OPEN_STATUSES}",
        order_by="-value_at_risk",
        description="Open critical findings, the most money at risk first.",
    ),
    BuiltInView(
        "Waiting for a count",
        "count=pending",
        description="Findings with a cycle count requested and not yet recorded.",
    ),
)


@dataclass(frozen=True)
class ViewLink:
    """One link of the saved-views bar."""

    name: str
    querystring: str
    kind: str  # "built-in" | "shared" | "mine"
    description: str = ""


def querystring_key(querystring: str) -> tuple[tuple[str, str], ...]:
    """``querystring`` normalised for comparison: sorted, without page and other noise."""
    pairs = parse_qsl(querystring.lstrip("?"), keep_blank_values=True)
    return tuple(sorted((k, v) for k, v in pairs if k not in IGNORED_PARAMETERS))


def querystring_clean(querystring: str) -> str:
    """``querystring`` as stored: no leading ``?``, no page number, parameters sorted."""
    return urlencode(querystring_key(querystring), safe=",")


def saved_views_for_user(user) -> list[SavedView]:
    """The shared views and ``user``'s own, in display order (one query)."""
    if user is None or not getattr(user, "is_authenticated", False):
        return []
    return list(
        SavedView.objects.filter(Q(shared=True) | Q(owner_id=user.pk)).only(
            "name", "querystring", "shared", "owner_id", "order"
        )
    )


def saved_view_links(*, user, sort_parameter) -> list[ViewLink]:
    """The bar's links: the built-in views, then shared ones, then the user's own.

    ``sort_parameter(order_by)`` turns a built-in view's sort column into the changelist's
    ``o`` value (the admin knows its column positions; "" when the column is not listed).
    """
    links = []
    for view in BUILT_IN_VIEWS:
        querystring = view.filters
        if view.order_by:
            o = sort_parameter(view.order_by)
            if o:
                querystring += f"&o={o}"
        links.append(ViewLink(view.name, querystring, "built-in", view.description))
    rows = saved_views_for_user(user)
    links += [ViewLink(r.name, r.querystring, "shared") for r in rows if r.shared]
    links += [ViewLink(r.name, r.querystring, "mine") for r in rows if not r.shared]
    return links


SHARE_PERMISSION = "anomalies.share_savedview"


def saved_view_may_share(user) -> bool:
    """Whether ``user`` may make a view shared, or change or delete a shared one (ops roles)."""
    return bool(user is not None and user.is_active and user.has_perm(SHARE_PERMISSION))


def saved_view_may_edit(user, view: SavedView) -> bool:
    """Whether ``user`` may change or delete ``view``: shared views need the share
    permission; a personal view is its owner's alone (and a superuser's)."""
    if user is None or not user.is_active:
        return False
    if user.is_superuser:
        return True
    if view.shared:
        return saved_view_may_share(user)
    return view.owner_id is not None and view.owner_id == user.pk
