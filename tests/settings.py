"""Settings of the test suite: the project's settings as a developer's machine runs them.

``DEBUG`` defaults to off (production); the suite, like ``make demo``, asks for a developer's
configuration (the development ``SECRET_KEY``, plain static file storage). pytest-django still
runs each test with ``settings.DEBUG`` off. The production configuration is tested on its own,
in subprocesses with their own environment (tests/config/test_production.py).
An environment that sets ``DEBUG`` itself wins (``DEBUG=false`` then needs a ``SECRET_KEY``).
"""

from __future__ import annotations

import os

os.environ.setdefault("DEBUG", "true")

from config.settings import *  # noqa: F403
