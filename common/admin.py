"""Admin helpers any app's ``ModelAdmin`` may use: a read-only mixin and a paginator that never
counts a whole table.

Model-agnostic; they import Django only.
"""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponseRedirect
from django.urls import reverse
from django.utils.functional import cached_property


class ReadOnlyAdminMixin:
    """For rows that only importers or services write: listed and viewed, never edited here.

    Mix in before ``admin.ModelAdmin``. The add, change and delete permission checks return
    False whatever the user's permissions; viewing follows Django's usual view permission.
    """

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False


class SingletonAdminMixin:
    """Admin of a one-row settings model (the model has a ``load()`` classmethod that returns
    the row, creating it if needed): change-only, nothing to add or delete, and the list
    redirects to the row. Viewing needs the view permission, editing the change permission."""

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # the one row exists; there is nothing to add

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def changelist_view(self, request: HttpRequest, extra_context: dict | None = None):
        if not self.has_view_or_change_permission(request):
            return super().changelist_view(request, extra_context)  # Django's refusal
        row = self.model.load()
        opts = self.opts
        return HttpResponseRedirect(
            reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[row.pk])
        )


class BoundedCountPaginator(Paginator):
    """Counts at most ``max_count`` rows, so a changelist never runs COUNT(*) over a huge table.

    Set as a ``ModelAdmin``'s ``paginator`` (with ``show_full_result_count = False``). The
    count is ``SELECT COUNT(*) FROM (SELECT ... LIMIT max_count + 1)``: bounded work whatever
    the table size. Past the bound ``count`` is ``max_count`` (the changelist offers that many
    rows of pages) and ``count_is_capped`` is True (the template says "more than"); narrowing
    with a filter or a search reaches the rest. ``object_list`` must be a queryset (its
    ordering is cleared for the count).
    """

    max_count = 10_000

    @cached_property
    def _bounded_count(self) -> int:
        return self.object_list.order_by()[: self.max_count + 1].count()

    @cached_property
    def count(self) -> int:
        return min(self._bounded_count, self.max_count)

    @property
    def count_is_capped(self) -> bool:
        return self._bounded_count > self.max_count
