"""Admin for anomalies (the ops staff's triage screen), detection runs and detector settings.

One module per screen; importing them registers their ``ModelAdmin``s:

- ``anomaly``: anomalies (list, change page, triage actions) and the activity log;
- ``runs``: detection runs with their chunks, and detector settings;
- ``policy``: the detection policy (false-discovery rate), one row;
- ``saved_views``: the triage list's saved views and its SLA targets (``changelist``: the
  list's columns);
- ``health``: the detector health page (a view of its own, routed in ``config/urls.py``);
- ``ack_until``: the anomaly list's "Acknowledge until…" action;
- ``filters``, ``forms``, ``display``: the anomaly list's filters, its forms, rendering helpers.
"""

from anomalies.admin import anomaly, policy, runs, saved_views  # noqa: F401  (importing registers them)
