"""The API's one permission layer: Django model permissions, the same the admin obeys.

``ModelPermissions`` (the default permission class) requires, for the view's queryset model:
``view`` for GET/HEAD, ``add`` for POST, ``change`` for PUT/PATCH, ``delete`` for DELETE. A
view names what its custom actions need in ``required_permissions``: action name (viewsets) or
lower-case method (plain API views) -> permission strings ("app_label.codename"); an entry
there replaces the method's default. Which rows a permitted user sees is the view's scoped
``get_queryset`` (a row outside the user's stores is a 404), not this module.

``MasterDataPermissions`` is for imported master data (products, locations): readable with
the view permission, writable by superusers only whatever their groups say.

Model-agnostic: imports DRF only.
"""

from __future__ import annotations

from typing import Any

from rest_framework.permissions import SAFE_METHODS, DjangoModelPermissions


class ModelPermissions(DjangoModelPermissions):
    """Django model permissions, with GET requiring the view permission, plus per-action
    overrides from the view's ``required_permissions``."""

    perms_map = {
        "GET": ["%(app_label)s.view_%(model_name)s"],
        "HEAD": ["%(app_label)s.view_%(model_name)s"],
        "OPTIONS": [],
        "POST": ["%(app_label)s.add_%(model_name)s"],
        "PUT": ["%(app_label)s.change_%(model_name)s"],
        "PATCH": ["%(app_label)s.change_%(model_name)s"],
        "DELETE": ["%(app_label)s.delete_%(model_name)s"],
    }

    @staticmethod
    def explicit_permissions(request: Any, view: Any) -> list[str] | tuple[str, ...] | None:
        """The permissions ``view`` names for this request, or ``None`` for the default."""
        required = getattr(view, "required_permissions", None) or {}
        key = getattr(view, "action", None) or request.method.lower()
        return required.get(key)

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        if not user or not user.is_authenticated:
            return False
        explicit = self.explicit_permissions(request, view)
        if explicit is not None:
            return user.has_perms(explicit)
        if request.method == "OPTIONS" or not hasattr(view, request.method.lower()):
            # OPTIONS needs no model permission (perms_map), and a method the view does not
            # offer (TRACE, POST on a report) is its 405. The default would first look for a
            # queryset that a report view does not have (a 500).
            return True
        return super().has_permission(request, view)


class MasterDataPermissions(ModelPermissions):
    """Read with the model's view permission; write only as a superuser."""

    def has_permission(self, request: Any, view: Any) -> bool:
        if request.method not in SAFE_METHODS:
            user = request.user
            return bool(user and user.is_authenticated and user.is_active and user.is_superuser)
        return super().has_permission(request, view)
