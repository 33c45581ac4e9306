"""Concurrent triage over HTTP: two people act on the same anomaly at the same moment.

``triage_races`` is the client side, shared by the PostgreSQL test (a live server in the test
process) and the SQLite one, which needs a file database that no in-memory test database can
stand in for: ``python -m tests.anomalies.triage_race DATABASE_FILE RACES`` migrates that
file, serves the API from a threaded server in the same process (``api_server``), runs the
races and prints one JSON line (``race_outcome``) for the test to check.
"""

from __future__ import annotations

import json
import os
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

import httpx

RACE_TIMEOUT_SECONDS = 120.0


def triage_races(*, base_url: str, tokens: tuple[str, str], anomaly_ids: list[int]) -> list:
    """For each anomaly, POST resolve (first token) and dismiss (second token) at once.

    All requests start together behind one barrier. Returns per anomaly the pair of HTTP
    statuses ``(resolve, dismiss)``.
    """
    barrier = threading.Barrier(2 * len(anomaly_ids))

    def post(token: str, anomaly_id: int, action: str, body: dict) -> int:
        with httpx.Client(base_url=base_url, timeout=RACE_TIMEOUT_SECONDS) as client:
            barrier.wait()
            response = client.post(
                f"/api/v1/anomalies/{anomaly_id}/{action}/",
                json=body,
                headers={"Authorization": f"Token {token}"},
            )
            return response.status_code

    with ThreadPoolExecutor(max_workers=2 * len(anomaly_ids)) as pool:
        futures = [
            (
                pool.submit(post, tokens[0], pk, "resolve", {"note": "counted: none on shelf"}),
                pool.submit(post, tokens[1], pk, "dismiss", {"reason": "expected"}),
            )
            for pk in anomaly_ids
        ]
        return [(a.result(), b.result()) for a, b in futures]


def race_outcome(anomaly_ids: list[int], statuses: list) -> dict:
    """What the races did: HTTP status counts, server errors, and lost updates (an anomaly
    whose state, activity log and the one winning response do not agree)."""
    from anomalies.models import Anomaly, AnomalyActivity

    rows = dict(Anomaly.objects.filter(pk__in=anomaly_ids).values_list("pk", "status"))
    log: dict[int, list[str]] = {}
    entries = AnomalyActivity.objects.filter(anomaly_id__in=anomaly_ids).order_by("id")
    for anomaly_id, action in entries.values_list("anomaly_id", "action"):
        log.setdefault(anomaly_id, []).append(action)
    lost = 0
    codes: dict[str, int] = {}
    for pk, (resolve, dismiss) in zip(anomaly_ids, statuses, strict=True):
        for code in (resolve, dismiss):
            codes[str(code)] = codes.get(str(code), 0) + 1
        winner = {(200, 409): "resolve", (409, 200): "dismiss"}.get((resolve, dismiss))
        expected = {"resolve": "resolved", "dismiss": "dismissed"}.get(winner or "")
        if winner is None or rows.get(pk) != expected or log.get(pk) != [winner]:
            lost += 1
    return {
        "races": len(anomaly_ids),
        "codes": codes,
        "server_errors": sum(n for code, n in codes.items() if code.startswith("5")),
        "inconsistent": lost,
    }


def race_data(races: int) -> tuple[tuple[str, str], list[int]]:
    """Two users with API tokens and ``races`` open anomalies."""
    from rest_framework.authtoken.models import Token

    from tests.factories import AnomalyFactory, UserFactory

    users = [UserFactory(username=name, is_superuser=True) for name in ("ana", "ben")]
    tokens = tuple(Token.objects.create(user=user).key for user in users)
    anomaly_ids = [AnomalyFactory(status="open").pk for _ in range(races)]
    return tokens, anomaly_ids


@contextmanager
def api_server(*, connections: int):
    """Serve the API from a threaded server in this process; yields its base URL.

    Its listen backlog takes ``connections`` at once: racers connect together, and a default
    backlog of 5 would reset some of them before the application ever saw the request.
    """
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    class Server(ThreadedWSGIServer):
        request_queue_size = connections

    server = Server(("127.0.0.1", 0), QuietHandler, allow_reuse_address=False)
    server.set_app(get_wsgi_application())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def main(database_file: str, races: int) -> None:
    """Migrate ``database_file`` (SQLite), serve the API, run the races, print the outcome."""
    os.environ["DATABASE_URL"] = f"sqlite:///{database_file}"
    os.environ.setdefault("LOG_LEVEL", "ERROR")  # 409s are expected; the outcome is the output
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    tokens, anomaly_ids = race_data(races)
    with api_server(connections=4 * races) as base_url:
        statuses = triage_races(base_url=base_url, tokens=tokens, anomaly_ids=anomaly_ids)
    print(json.dumps(race_outcome(anomaly_ids, statuses)))


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
