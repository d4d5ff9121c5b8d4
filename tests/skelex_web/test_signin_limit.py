"""Password guessing is slowed down: after 10 failed sign-ins for one user name or from one address
within 15 minutes, the API token endpoint, the sign-in page and the admin refuse until the window ends."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from rest_framework.test import APIClient

from tests.factories import UserFactory

RIGHT, WRONG = "pw-for-tests-1", "guess"
ATTACKER, OFFICE = "203.0.113.9", "10.1.2.3"


@pytest.fixture(autouse=True)
def _fresh_counts(settings: Any) -> None:
    settings.SIGNIN_FAILURES_PER_USER = settings.SIGNIN_FAILURES_PER_ADDRESS = 10
    settings.SIGNIN_WINDOW_S = 900
    cache.clear()


def token(username: str, password: str, address: str = ATTACKER) -> Any:
    return APIClient().post(
        "/api/auth/token/", {"username": username, "password": password}, format="json", REMOTE_ADDR=address
    )


def sign_in(username: str, password: str, address: str = ATTACKER) -> Any:
    return Client().post("/accounts/login/", {"username": username, "password": password}, REMOTE_ADDR=address)


def test_the_11th_token_request_is_refused_even_with_the_right_password_until_the_window_ends(
    personas: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    start = time.time()
    assert [token("ana", WRONG).status_code for _ in range(10)] == [400] * 10

    refused = token("ana", RIGHT)
    assert refused.status_code == 429
    assert 899 <= int(refused["Retry-After"]) <= 900
    assert refused.json() == {"detail": "Too many failed sign-ins: try again in 15 minutes."}
    assert token("ana", RIGHT, address=OFFICE).status_code == 429  # the name is limited from anywhere
    assert token("rui", RIGHT).status_code == 429  # and the address for any name
    assert token("rui", RIGHT, address=OFFICE).status_code == 200  # another name from another address

    monkeypatch.setattr(time, "time", lambda: start + 901)  # the window has ended
    reply = token("ana", RIGHT)
    assert reply.status_code == 200 and reply.json()["token"]


def test_the_sign_in_page_names_the_wait_and_signs_no_one_in(personas: Any) -> None:
    for _ in range(10):
        assert b"did not match" in sign_in("ana", WRONG).content

    refused = sign_in("ana", RIGHT)
    assert refused.status_code == 429 and "Retry-After" in refused
    assert "Too many failed sign-ins: try again in 15 minutes." in refused.content.decode()
    assert "_auth_user_id" not in refused.wsgi_request.session
    signed_in = sign_in("rui", RIGHT, address=OFFICE)
    assert signed_in.status_code == 302 and signed_in["Location"] == "/"


def test_a_correct_sign_in_under_the_limit_works_and_clears_the_names_count(personas: Any) -> None:
    assert [token("ana", WRONG).status_code for _ in range(9)] == [400] * 9
    assert sign_in("ana", RIGHT).status_code == 302
    # Had the success not cleared the name's count, this would be its 10th failure and lock it.
    assert token("ana", WRONG, address=OFFICE).status_code == 400
    assert token("ana", RIGHT, address=OFFICE).status_code == 200


def test_the_admin_sign_in_counts_too(personas: Any) -> None:
    UserFactory(username="sam", is_staff=True, is_superuser=True)
    for _ in range(10):
        token("sam", WRONG)
    refused = Client().post("/admin/login/", {"username": "sam", "password": RIGHT}, REMOTE_ADDR=OFFICE)
    assert "Too many failed sign-ins" in refused.content.decode()
    assert "_auth_user_id" not in refused.wsgi_request.session


def test_the_limits_are_settings_and_zero_turns_them_off(personas: Any, settings: Any) -> None:
    settings.SIGNIN_FAILURES_PER_USER, settings.SIGNIN_FAILURES_PER_ADDRESS = 3, 0
    for address in ("10.0.0.1", "10.0.0.2", "10.0.0.3"):
        token("ana", WRONG, address=address)
    assert token("ana", RIGHT, address="10.0.0.4").status_code == 429
    settings.SIGNIN_FAILURES_PER_USER = 0
    assert token("ana", RIGHT, address="10.0.0.4").status_code == 200


def test_a_token_is_revoked_on_request_and_by_a_password_change(personas: Any) -> None:
    key = token("ana", RIGHT).json()["token"]
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/projects/").status_code == 200

    assert api.delete("/api/auth/token/").json() == {"revoked": True}
    assert api.get("/api/projects/").status_code == 401
    assert APIClient().delete("/api/auth/token/").status_code == 401  # nobody signed in: nothing to revoke

    key = token("ana", RIGHT).json()["token"]  # a new one
    page = Client()
    page.force_login(personas["annotator"])
    page.post(
        "/accounts/password_change/",
        {"old_password": RIGHT, "new_password1": "wrist-films-42", "new_password2": "wrist-films-42"},
    )
    api.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert api.get("/api/projects/").status_code == 401
    assert token("ana", "wrist-films-42").status_code == 200


def test_a_browser_idle_longer_than_the_limit_is_signed_out(personas: Any, settings: Any) -> None:
    from datetime import timedelta

    from django.contrib.sessions.models import Session
    from django.utils import timezone

    settings.SESSION_COOKIE_AGE = 3600
    page = Client()
    page.post("/accounts/login/", {"username": "ana", "password": RIGHT})
    session = Session.objects.get()
    assert abs((session.expire_date - timezone.now()) - timedelta(hours=1)) < timedelta(minutes=1)

    Session.objects.update(expire_date=timezone.now() + timedelta(minutes=5))
    assert page.get("/").status_code == 200  # in use: each request moves the end
    assert Session.objects.get().expire_date > timezone.now() + timedelta(minutes=55)

    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))  # an hour without a request
    gone = page.get("/")
    assert gone.status_code == 302 and gone["Location"].startswith("/accounts/login/")
