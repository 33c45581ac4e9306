"""Small rendering helpers shared by the anomalies admins."""

from __future__ import annotations

import json
from typing import Any

from django.utils.html import format_html


def pretty_json(value: Any) -> str:
    """``value`` as indented JSON in a ``<pre>``, for read-only admin fields."""
    return format_html(
        "<pre style='margin:0'>{}</pre>",
        json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False),
    )


def action_form_page(
    modeladmin: Any,
    request: Any,
    queryset: Any,
    *,
    title: str,
    template: str,
    form: Any,
    preview_rows: int,
) -> Any:
    """The intermediate page of a list action that asks for more (Dismiss…, Acknowledge
    until…), like Django's delete confirmation: ``form``, the selection carried over (the
    ticked ids or "all") and a preview of the first ``preview_rows`` rows; it posts back to the
    same action with ``post=yes`` (``_action_form.html``). Returns a ``TemplateResponse``."""
    from django.contrib.admin import helpers
    from django.template.response import TemplateResponse

    context = {
        **modeladmin.admin_site.each_context(request),
        "title": title,
        "opts": modeladmin.opts,
        "form": form,
        "count": queryset.count(),
        "preview": queryset.select_related("product", "location")[:preview_rows],
        "selected_ids": request.POST.getlist(helpers.ACTION_CHECKBOX_NAME),
        "select_across": request.POST.get("select_across") == "1",
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "media": modeladmin.media,
    }
    request.current_app = modeladmin.admin_site.name
    return TemplateResponse(request, template, context)
