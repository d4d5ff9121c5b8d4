"""Sign-in with a limit on password guessing: the sign-in page, ``POST /api/auth/token/`` and the
admin's sign-in all count failed attempts per user name and per client address.

After ``SIGNIN_FAILURES_PER_USER`` failures for one user name, or ``SIGNIN_FAILURES_PER_ADDRESS``
from one address, within ``SIGNIN_WINDOW_S`` seconds of the first of them, every further attempt
for that name or from that address is refused without looking at the password (the right one
too) until the window ends: 429 with ``Retry-After`` from the API and the page, a form error naming
the wait on the pages. A successful sign-in is not counted and clears its user name's count (not
its address's: one valid account must not reset the count of guesses at others).

The counters live in Django's cache (Redis in production, shared by every web process; local
memory in the demo). Names are counted case-folded and hashed (any name, existing or not, so a
refusal tells nothing about which accounts exist). The address is ``REMOTE_ADDR``: behind a
reverse proxy, daphne must be started with ``--proxy-headers`` (``docs/deploy.md``).
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from typing import Any

from django.conf import settings
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.views import LoginView, PasswordChangeView
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.http import HttpResponse
from rest_framework.authtoken.models import Token
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.exceptions import NotAuthenticated
from rest_framework.exceptions import ValidationError as ApiValidationError
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from skelex_web.projects.parsers import JSONParser, json_object

logger = logging.getLogger(__name__)


def _counters(request: Any, username: str) -> list[tuple[str, int, str]]:
    """``(cache key, limit, what for the log)`` of the counters an attempt counts against."""
    out = []
    if settings.SIGNIN_FAILURES_PER_USER > 0 and username:
        digest = hashlib.sha256(username.casefold().encode()).hexdigest()[:32]
        out.append((f"skelex:signin-failures:user:{digest}", settings.SIGNIN_FAILURES_PER_USER, "one user name"))
    address = request.META.get("REMOTE_ADDR", "") if request is not None else ""
    if settings.SIGNIN_FAILURES_PER_ADDRESS > 0 and address:
        out.append((f"skelex:signin-failures:addr:{address}", settings.SIGNIN_FAILURES_PER_ADDRESS, address))
    return out


def retry_after(request: Any, username: str) -> int:
    """Seconds until an attempt for ``username`` from this request's address may be made; 0 = now."""
    counters = _counters(request, username)
    stored = cache.get_many([k for k, _, _ in counters] + [f"{k}:until" for k, _, _ in counters])
    now, waits = time.time(), []
    for key, limit, _ in counters:
        if stored.get(key, 0) >= limit:
            until = stored.get(f"{key}:until", now + settings.SIGNIN_WINDOW_S)
            waits.append(max(1, math.ceil(until - now)))
    return max(waits, default=0)


def failed(request: Any, username: str) -> None:
    """Counts one failed attempt; the first failure of a counter opens its window."""
    window = settings.SIGNIN_WINDOW_S
    for key, limit, what in _counters(request, username):
        if cache.add(key, 1, timeout=window):
            cache.set(f"{key}:until", time.time() + window, timeout=window)
            count = 1
        else:
            try:
                count = cache.incr(key)  # atomic in Redis; keeps the key's expiry
            except ValueError:  # the window closed between add and incr: this failure opens the next
                cache.set(key, 1, timeout=window)
                cache.set(f"{key}:until", time.time() + window, timeout=window)
                count = 1
        if count == limit:
            logger.warning("sign-in: %s failed attempts from %s; refused for up to %s s", count, what, window)


def succeeded(request: Any, username: str) -> None:
    """Clears the user name's count (the address's stays)."""
    if settings.SIGNIN_FAILURES_PER_USER > 0 and username:
        key = _counters(request, username)[0][0]
        cache.delete_many([key, f"{key}:until"])


def too_many(wait: int) -> str:
    """What a refused sign-in says: the wait, rounded up to whole minutes from one minute on."""
    said = f"{wait} second{'s' if wait != 1 else ''}"
    if wait >= 60:
        minutes = math.ceil(wait / 60)
        said = f"{minutes} minute{'s' if minutes != 1 else ''}"
    return f"Too many failed sign-ins: try again in {said}."


# --- the pages ---------------------------------------------------------------------------------


class LimitedSignIn:
    """Mixin for Django's sign-in forms: refuses while limited, counts failures. ``retry_after`` is
    the wait when refused for the limit (0 otherwise)."""

    request: Any
    cleaned_data: dict[str, Any]
    retry_after = 0

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username") or ""
        self.retry_after = retry_after(self.request, username)
        if self.retry_after:
            raise ValidationError(too_many(self.retry_after), code="throttled")
        try:
            cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]
        except ValidationError:
            if username and self.cleaned_data.get("password"):
                failed(self.request, username)
            raise
        succeeded(self.request, username)
        return cleaned


class SignInForm(LimitedSignIn, AuthenticationForm):
    pass


class AdminSignInForm(LimitedSignIn, AdminAuthenticationForm):
    pass


class SignInView(LoginView):
    """``/accounts/login/``: Django's sign-in page with the limit; a refusal for it answers 429."""

    authentication_form = SignInForm

    def form_invalid(self, form: Any) -> HttpResponse:
        response = super().form_invalid(form)
        if form.retry_after:
            response.status_code = 429
            response["Retry-After"] = str(form.retry_after)
        return response


class PasswordChange(PasswordChangeView):
    """``/accounts/password_change/``: the house page; a changed password also revokes the user's API
    token (a password changed because it leaked must not leave a token made with it working).
    Django signs the user's other sessions out itself."""

    template_name = "pages/password_change_form.html"

    def form_valid(self, form: Any) -> HttpResponse:
        Token.objects.filter(user=form.user).delete()
        return super().form_valid(form)


# --- the API -----------------------------------------------------------------------------------


class TokenView(ObtainAuthToken):
    """``POST /api/auth/token/`` (``username``, ``password``) → ``{"token"}``, with the limit: 429 and
    ``Retry-After`` while refused. ``DELETE`` (signed in, by the token or a session) revokes the
    caller's token: requests with it answer 401 from then on, and the next ``POST`` makes a new one."""

    parser_classes = (FormParser, MultiPartParser, JSONParser)  # ObtainAuthToken names DRF's own

    def delete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not request.user.is_authenticated:
            raise NotAuthenticated()
        revoked, _ = Token.objects.filter(user=request.user).delete()
        return Response({"revoked": bool(revoked)})

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = json_object(request)
        username = data.get("username", "")
        username = username if isinstance(username, str) else ""
        wait = retry_after(request, username)
        if wait:
            return Response({"detail": too_many(wait)}, status=429, headers={"Retry-After": str(wait)})
        try:
            response = super().post(request, *args, **kwargs)
        except ApiValidationError:
            if username and data.get("password"):
                failed(request, username)
            raise
        succeeded(request, username)
        return response
