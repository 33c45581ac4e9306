"""DRF throttles that read their rates when asked, not when imported.

DRF's throttles copy ``DEFAULT_THROTTLE_RATES`` into a class attribute at import, so a rate
set by the environment after import, or by a test's ``settings`` fixture, would be ignored.
These read ``api_settings`` (which DRF reloads on a settings change) each time. Counters are
kept in the default cache.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from rest_framework import throttling
from rest_framework.settings import api_settings


class _LiveRatesMixin:
    def get_rate(self) -> str | None:
        try:
            return api_settings.DEFAULT_THROTTLE_RATES[self.scope]
        except KeyError as exc:
            raise ImproperlyConfigured(f"No throttle rate set for scope {self.scope!r}") from exc


class AnonRateThrottle(_LiveRatesMixin, throttling.AnonRateThrottle):
    """Per client address for unauthenticated requests (scope ``anon``)."""


class UserRateThrottle(_LiveRatesMixin, throttling.UserRateThrottle):
    """Per user (per address when anonymous) over all requests (scope ``user``)."""


class ScopedRateThrottle(_LiveRatesMixin, throttling.ScopedRateThrottle):
    """Per user and view scope: views that set ``throttle_scope`` (``runs``, ``reports``,
    ``auth``) get that scope's rate; views without one are not limited by it."""
