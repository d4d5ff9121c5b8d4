"""System checks: refuse to run in production (DEBUG off) with the development secret key."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import Error, register


@register("security", deploy=False)
def check_secret_key(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    from skelex_web.settings import DEV_SECRET_KEY

    if not settings.DEBUG and settings.SECRET_KEY == DEV_SECRET_KEY:
        return [
            Error(
                "DEBUG is off but SECRET_KEY is the development key.",
                hint="Set SECRET_KEY (or SECRET_KEY_FILE) to a long random value for this deployment.",
                id="skelex.E001",
            )
        ]
    return []
