"""Bad input on every write: the REST API's and the project page's forms.

Signed in as the lead (so no permission hides a problem), each write gets a battery of bad
requests: bodies that are not JSON or not an object, every field with the wrong type, hostile
numbers (negative, NaN and Infinity, 1e308, 2**70), 100 kB strings, unknown enum values, ids
that do not exist or belong to another project; the forms get missing and garbage fields. Each
must answer 4xx (the API's 400 naming the offending field; a form redirects with a message), and
leave every row as it was: nothing stored, nothing half-written, no audit event.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.db.models import Model
from django.test import Client
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from skelex_web.audit.models import AuditEvent
from skelex_web.exports import services as exports
from skelex_web.exports.models import DatasetVersion, ExportJob
from skelex_web.labeling.models import Annotation, Suggestion
from skelex_web.learning.models import ModelVersion
from skelex_web.projects.models import Membership, Project
from skelex_web.studies.models import Image, Study, UploadJob
from tests.factories import AnnotationFactory, ImageFactory, SuggestionFactory

BIG = "x" * 100_000
HUGE = 2**70
# Numbers no count, id or coordinate can hold: as JSON strings DRF's number fields parse them.
NOT_FINITE = ["NaN", "Infinity", "-Infinity"]
EXTREME = [*NOT_FINITE, 1e308, HUGE, -HUGE]
# Wrong types for a field that wants a string, a number, an object or a list.
NOT_STR = [None, [], {}, True]
NOT_NUMBER = [None, "one", [], {}, BIG]
NOT_OBJECT = [None, "x", 1, [], [{}]]
NOT_LIST = [None, "x", 1, {}]

# Bodies that are not JSON (or not JSON the parser should take), and JSON that is not an object.
RAW_BODIES = {
    "not JSON": b"{name: 1",
    "NaN literal": b'{"x": NaN}',
    "Infinity literal": b'{"x": -Infinity}',
    "not UTF-8": b'{"name": "\xff\xfe"}',
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
}
NOT_AN_OBJECT: list[Any] = [[], [{}], [1], "x", 1, None]
COORDS = ["x0", "y0", "x1", "y1"]
# A corner outside the image is refused as the box's ("must lie inside the image (0..300 x 0..400)").
ALSO_NAMED = {k: f"{k}|box" for k in COORDS}

MODELS: list[type[Model]] = [
    get_user_model(),
    Token,
    Project,
    Membership,
    Study,
    Image,
    UploadJob,
    Annotation,
    Suggestion,
    ModelVersion,
    DatasetVersion,
    ExportJob,
    AuditEvent,
]


def rows() -> dict[str, list[dict[str, Any]]]:
    """Every row of every table a write may touch, as stored."""
    return {m.__name__: list(m.objects.order_by("pk").values()) for m in MODELS}


@dataclass(frozen=True)
class Bad:
    """One bad request, and the field its 400 must name (None: any 4xx will do, e.g. a 404)."""

    what: str
    method: str
    url: str
    body: Any = None  # sent as JSON; None: no body
    raw: bytes | None = None
    field: str | None = None  # "x0|box": either name will do


def short(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, bytes) else repr(value)
    return text if len(text) <= 40 else f"{text[:30]}...({len(text)} chars)"


def battery(method: str, url: str, base: dict[str, Any], bad: dict[str, list[Any]]) -> list[Bad]:
    """Each field's bad values (one at a time, the rest of ``base`` valid), then bad bodies."""
    out = [
        Bad(f"{k}={short(v)}", method, url, body={**base, k: v}, field=ALSO_NAMED.get(k, k))
        for k, vs in bad.items()
        for v in vs
    ]
    out += [Bad(f"body {what}", method, url, raw=raw) for what, raw in RAW_BODIES.items()]
    out += not_objects(method, url)
    return out


def not_objects(method: str, url: str) -> list[Bad]:
    return [Bad(f"body {short(v)}", method, url, raw=json.dumps(v).encode()) for v in NOT_AN_OBJECT]


def send(client: APIClient, bad: Bad) -> Any:
    data = bad.raw if bad.raw is not None else b"" if bad.body is None else json.dumps(bad.body).encode()
    return client.generic(bad.method, bad.url, data, content_type="application/json")


def names(response: Any, field: str) -> bool:
    """Whether a JSON error body names ``field`` (as a key of its errors or in its words)."""
    try:
        text = json.dumps(response.json())
    except ValueError:
        return False
    return any(re.search(rf"\b{re.escape(name)}\b", text) for name in field.split("|"))


def refusals(client: APIClient, bads: list[Bad]) -> list[str]:
    """What went wrong, one line per bad request not refused cleanly (empty when all were)."""
    failures = []
    for bad in bads:
        before = rows()
        with transaction.atomic():  # a database error in the view (a 500) must not break the next
            response = send(client, bad)
        where = f"{bad.method} {bad.url} {bad.what}: {response.status_code}"
        if not 400 <= response.status_code < 500:
            failures.append(f"{where} {response.content[:200]!r}")
        elif response.status_code == 400 and bad.field and not names(response, bad.field):
            failures.append(f"{where}, error does not name {bad.field!r}: {response.content[:200]!r}")
        elif rows() != before:
            failures.append(f"{where}, but rows changed")
    return failures


@pytest.fixture
def w(project: Any, other_project: Any, personas: dict[str, Any], sent_tasks: list[Any]) -> SimpleNamespace:
    """The lead's project with an image, a box and a head answer, a pending and a rejected
    suggestion and a dataset version; the same things in someone else's project."""
    lead = personas["lead"]
    image = ImageFactory(project=project)
    theirs = ImageFactory(project=other_project)
    olga = other_project.memberships.get().user
    return SimpleNamespace(
        project=project.pk,
        image=image.pk,
        box=AnnotationFactory(image=image, author=lead),
        head=AnnotationFactory(
            image=image, author=lead, kind="head", head="abnormal", value="yes", x0=None, y0=None, x1=None, y1=None
        ),
        suggestion=SuggestionFactory(image=image).pk,
        rejected=SuggestionFactory(image=image, state="rejected").pk,
        version=exports.create_version(project=project, actor=lead, filters={"include_unlabelled": True}).pk,
        member=project.memberships.get(user=personas["viewer"]).pk,
        lead_member=project.memberships.get(user=lead).pk,
        other=other_project.pk,
        their_image=theirs.pk,
        their_annotation=AnnotationFactory(image=theirs, author=olga).pk,
        their_suggestion=SuggestionFactory(image=theirs).pk,
        their_member=other_project.memberships.get().pk,
        their_version=exports.create_version(
            project=other_project, actor=olga, filters={"include_unlabelled": True}
        ).pk,
    )


# --- the API ---------------------------------------------------------------------------------------

SETTINGS_BAD = [
    *NOT_OBJECT,
    *({"retrain_every": v} for v in [*NOT_NUMBER, 0, -1, 1.5, True, *EXTREME]),
    *({"sampling": v} for v in [*NOT_STR, 1, "bogus", BIG]),
    *({flag: v} for flag in ("deidentify", "keep_file_names") for v in [None, "yes", 1, [], {}]),
    *({"focus": v} for v in [*NOT_STR, 1, "bogus", BIG]),
    {"bogus": BIG},
]
SCHEMA_BAD = [
    *NOT_OBJECT,
    {"box_labels": "fracture"},
    {"box_labels": [1]},
    {"box_labels": [BIG]},
    {"heads": "x"},
    {"heads": [1]},
    {"heads": [{"name": BIG, "kind": "binary", "classes": ["no", "yes"]}]},
    {"heads": [{"name": "a", "kind": "bogus", "classes": ["no", "yes"]}]},
    {"heads": [{"name": "a", "kind": "binary", "classes": "no"}]},
    {"heads": [{"name": "a", "kind": "binary", "classes": [1, 2]}]},
    {"heads": [{"name": "a", "kind": "binary", "classes": ["no", BIG]}]},
    {"heads": [{"name": "a", "kind": "binary", "classes": ["no", "yes"], "description": BIG}]},
    {"bogus": []},
]


def project_writes(w: SimpleNamespace) -> list[Bad]:
    one = f"/api/projects/{w.project}/"
    fields = {
        "name": [*NOT_STR, "", BIG],
        "slug": [*NOT_STR, "not a slug!", BIG, "elsewhere"],
        "description": [None, [], {}, BIG],
        "label_schema": SCHEMA_BAD,
        "settings": SETTINGS_BAD,
    }
    return [
        *battery("POST", "/api/projects/", {"name": "Knees"}, fields),
        *battery("PATCH", one, {}, fields),
        *battery("PUT", one, {"name": "Wrist fractures", "slug": "wrist"}, fields),
        *(Bad("someone else's", m, f"/api/projects/{w.other}/", body={"name": "x"}) for m in ("PATCH", "DELETE")),
        *(Bad(f"id {p}", "DELETE", f"/api/projects/{p}/") for p in (10**9, HUGE, -1, "abc")),
    ]


def member_writes(w: SimpleNamespace) -> list[Bad]:
    members = f"/api/projects/{w.project}/members/"
    role = {"role": [*NOT_STR, 1, "bogus", "", BIG]}
    # A member's user is who they are: another name is no change of role.
    change = {**role, "username": ["olga", "nobody", BIG]}
    return [
        *battery(
            "POST", members, {"username": "otto", "role": "viewer"}, {"username": [*NOT_STR, 1, BIG, "nobody"], **role}
        ),
        *battery("PATCH", f"{members}{w.member}/", {"role": "reviewer"}, change),
        *battery("PUT", f"{members}{w.member}/", {"role": "reviewer"}, change),
        Bad("the last lead", "DELETE", f"{members}{w.lead_member}/", field="role"),
        Bad("demote the last lead", "PATCH", f"{members}{w.lead_member}/", body={"role": "viewer"}, field="role"),
        *(
            Bad(f"member {m}", method, f"{members}{m}/", body={"role": "viewer"})
            for m in (w.their_member, 10**9, HUGE)
            for method in ("PATCH", "DELETE")
        ),
        Bad(
            "someone else's project",
            "POST",
            f"/api/projects/{w.other}/members/",
            body={"username": "otto", "role": "viewer"},
        ),
    ]


def annotation_writes(w: SimpleNamespace) -> list[Bad]:
    box = {"image": w.image, "kind": "box", "label": "fracture", "x0": 1, "y0": 2, "x1": 30, "y1": 40}
    head = {"image": w.image, "kind": "head", "head": "implant", "value": "yes"}
    coord_bad = [*NOT_NUMBER, *EXTREME, -1]
    creates = battery(
        "POST",
        "/api/annotations/",
        box,
        {
            "image": [None, "one", [], {}, 1.5, *EXTREME],
            "kind": [*NOT_STR, 1, "bogus", BIG],
            "label": [*NOT_STR, 1, "bogus", BIG],
            **{k: coord_bad for k in COORDS},
            "time_spent_ms": ["x", [], -1, 1.5, *EXTREME],
            "client_uid": [[], {}, "not-a-uuid", BIG],  # a number is a UUID to DRF (UUID(int=n))
            "suggestion": ["x", [], {}, -1, 10**9, HUGE, w.their_suggestion, w.rejected],
            "value": [1, "yes", {}, BIG],  # a box has no value
        },
    )
    creates += battery(
        "POST",
        "/api/annotations/",
        head,
        {
            "head": [*NOT_STR, 1, "bogus", BIG],
            "value": [None, 1, [], {}, ["yes"], "bogus", BIG],
            **{k: NOT_FINITE for k in COORDS},
            "label": [BIG],
            "suggestion": [w.suggestion],  # a box's
        },
    )
    creates += [
        Bad(f"image {i}", "POST", "/api/annotations/", body={**box, "image": i}) for i in (w.their_image, 10**9)
    ]
    creates += [Bad("a second answer to a head", "POST", "/api/annotations/", body={**head, "head": "abnormal"})]

    def edit(a: Any, extra: dict[str, Any]) -> list[Bad]:
        url = f"/api/annotations/{a.pk}/"
        return battery(
            "PATCH",
            url,
            {"version": a.version, "reviewed": True},
            {
                "version": [*NOT_NUMBER, 0, -1, 1.5, *EXTREME, a.version + 1],
                "reviewed": [None, "maybe", 2, [], {}],
                "time_spent_ms": ["x", -1, *EXTREME],
                "bogus": [1],
                "project": [w.other],
                **extra,
            },
        )

    edits = edit(
        w.box,
        {"label": [*NOT_STR, "bogus", BIG], "value": [1, {}, BIG], **{k: [*NOT_NUMBER, *EXTREME, -1] for k in COORDS}},
    )
    edits += edit(w.head, {"value": [1, {}, "bogus", BIG], "head": ["bogus", BIG], "label": [BIG]})
    edits += edit(w.head, {k: NOT_FINITE for k in COORDS})
    edits += [
        Bad(
            "someone else's", "PATCH", f"/api/annotations/{w.their_annotation}/", body={"version": 1, "label": "lesion"}
        )
    ]
    url = f"/api/annotations/{w.box.pk}/"
    deletes = [
        Bad(f"?version={v}", "DELETE", f"{url}?version={v}", field="version") for v in ("x", "NaN", "", "1e308", "1.5")
    ]
    deletes += [
        Bad(f"body {short(v)}", "DELETE", url, body=v, field="version") for v in ({"version": "x"}, {"version": []}, {})
    ]
    deletes += not_objects("DELETE", url)
    deletes += [Bad(f"body {what}", "DELETE", url, raw=raw) for what, raw in RAW_BODIES.items()]
    deletes += [
        Bad("stale", "DELETE", f"{url}?version={w.box.version + 1}"),
        Bad("huge", "DELETE", f"{url}?version={HUGE}"),
    ]
    deletes += [Bad("someone else's", "DELETE", f"/api/annotations/{w.their_annotation}/?version=1")]
    return creates + edits + deletes


def suggestion_writes(w: SimpleNamespace) -> list[Bad]:
    out = [
        Bad(f"{verb} {s}", "POST", f"/api/suggestions/{s}/{verb}/")
        for s in (w.their_suggestion, 10**9, HUGE, "abc")
        for verb in ("accept", "reject", "reopen")
    ]
    out += [
        Bad(
            f"{verb} rejected",
            "POST",
            f"/api/suggestions/{w.rejected}/{verb}/",
            field="suggestion" if verb == "accept" else "state",
        )
        for verb in ("accept", "reject")
    ]
    out += [Bad("reopen pending", "POST", f"/api/suggestions/{w.suggestion}/reopen/", field="state")]
    return out


def image_writes(w: SimpleNamespace) -> list[Bad]:
    out = [Bad(f"delete {i}", "DELETE", f"/api/images/{i}/") for i in (w.their_image, 10**9, HUGE)]
    out += [Bad(f"accept-all {i}", "POST", f"/api/images/{i}/accept-all/") for i in (w.their_image, 10**9)]
    out += [Bad(f"claim {i}", m, f"/api/images/{i}/claim/") for i in (w.their_image, 10**9) for m in ("POST", "DELETE")]
    at = ["garbage", "2024-13-45T99:99:99", BIG[:5000], "", "2024-01-01T00:00:00+99:00"]
    at += ["9999-12-31T23:59:59-23:59", "0001-01-01T00:00:00%2B23:59"]  # in UTC: year 10000, year 0
    out += [Bad(f"release at={short(a)}", "DELETE", f"/api/images/{w.image}/claim/?at={a}", field="at") for a in at]
    return out


def loop_writes(w: SimpleNamespace) -> list[Bad]:
    url = f"/api/projects/{w.project}/queue/next/"
    out = battery("POST", url, {"skip": []}, {"skip": [*NOT_LIST, ["x"], [1.5], [None], [True], [HUGE], [-HUGE], [{}]]})
    for view in ("queue/next", "retrain", "ranking-comparison"):
        out += [Bad(f"{view} of {p}", "POST", f"/api/projects/{p}/{view}/") for p in (w.other, 10**9)]
    return out


def export_writes(w: SimpleNamespace) -> list[Bad]:
    base = {"project": w.project, "filters": {"include_unlabelled": True}}
    versions = battery(
        "POST",
        "/api/dataset-versions/",
        base,
        {
            "project": ["one", [], {}, 1.5, *EXTREME],
            "name": [*NOT_STR, BIG],
            "filters": [
                *NOT_OBJECT,
                *({k: v} for k in ("labels", "heads", "body_parts", "origins") for v in ["x", 1, {}, [1], [None]]),
                {"labels": ["bogus"]},
                {"heads": ["bogus"]},
                {"origins": ["bogus"]},
                {"bogus": True},
                *({"reviewed_only": v, "include_unlabelled": True} for v in ["no", "false", 1, [], {}]),
                *({"include_unlabelled": v} for v in ["no", "false", 1, [], {}, [1]]),
            ],
            "split_seed": [*NOT_NUMBER, -1, 1.5, *EXTREME],
            "split_ratios": [
                "x",
                1,
                [],
                {"train": "x"},
                {"train": None},
                {"train": -1},
                {"train": 0},
                {"bogus": 1},
                *({"train": v} for v in NOT_FINITE),  # alone, 1e308 is a share like any other
                {"train": 1e308, "val": 1e308},
            ],
        },
    )
    versions += [
        Bad(f"project {p}", "POST", "/api/dataset-versions/", body={**base, "project": p}) for p in (w.other, 10**9, -1)
    ]
    url = f"/api/dataset-versions/{w.version}/export/"
    starts = battery(
        "POST", url, {"format": "coco"}, {"format": [*NOT_STR, 1, "bogus", BIG], "images": [*NOT_STR, 1, "bogus", BIG]}
    )
    starts += [
        Bad(f"version {v}", "POST", f"/api/dataset-versions/{v}/export/", body={"format": "coco"})
        for v in (w.their_version, 10**9, HUGE)
    ]
    return versions + starts


API = {
    "projects": project_writes,
    "members": member_writes,
    "annotations": annotation_writes,
    "suggestions": suggestion_writes,
    "images": image_writes,
    "active learning": loop_writes,
    "dataset versions and exports": export_writes,
}


@pytest.mark.parametrize("writes", API.values(), ids=API.keys())
def test_api_writes_refuse_bad_input_and_store_nothing(
    writes: Callable[[SimpleNamespace], list[Bad]], w: SimpleNamespace, client_for: Callable[[str], APIClient]
) -> None:
    client = client_for("lead")
    client.raise_request_exception = False  # a server error is an answer to check, not a crash of the test
    failures = refusals(client, writes(w))
    assert not failures, "\n".join(failures)


def test_token_refuses_bad_input(w: SimpleNamespace, settings: Any) -> None:
    settings.SIGNIN_FAILURES_PER_USER = settings.SIGNIN_FAILURES_PER_ADDRESS = 0  # no 429 hiding an answer
    client = APIClient()
    client.raise_request_exception = False
    url, lena = "/api/auth/token/", {"username": "lena", "password": "wrong"}
    bads = battery("POST", url, lena, {"username": NOT_STR, "password": NOT_STR})
    # Wrong credentials, whatever their size: refused as such, without saying which is wrong.
    bads += [Bad(f"100 kB {k}", "POST", url, body={**lena, k: BIG}) for k in lena]
    failures = refusals(client, bads)
    assert not failures, "\n".join(failures)


def test_upload_refuses_bad_input(w: SimpleNamespace, client_for: Callable[[str], APIClient]) -> None:
    client = client_for("lead")
    client.raise_request_exception = False
    url = f"/api/projects/{w.project}/images/upload/"
    before = rows()
    answers = {
        "JSON": client.post(url, {"files": []}, format="json").status_code,
        "no files": client.post(url, {"files": "not a file"}, format="multipart").status_code,
        "broken multipart": client.generic(
            "POST", url, b"--x\r\nnonsense", content_type="multipart/form-data; boundary=x"
        ).status_code,
        "no boundary": client.generic("POST", url, b"abc", content_type="multipart/form-data").status_code,
        "Content-Length not a number": client.generic(
            "POST", url, b"", content_type="multipart/form-data; boundary=x", CONTENT_LENGTH="abc"
        ).status_code,
        "someone else's project": client.post(
            f"/api/projects/{w.other}/images/upload/", {"files": SimpleUploadedFile("a.png", b"x")}, format="multipart"
        ).status_code,
    }
    assert {k: v for k, v in answers.items() if not 400 <= v < 500} == {}
    assert rows() == before
    # A file that is no image is refused by name in the per-file results; nothing is stored.
    response = client.post(url, {"files": SimpleUploadedFile("junk.png", b"\x00" * 100)}, format="multipart")
    assert response.status_code == 200 and response.json()["summary"]["rejected"] == 1
    assert rows()["Image"] == before["Image"]


# --- the project page's forms ----------------------------------------------------------------------


def form_posts(w: SimpleNamespace) -> Iterator[tuple[str, dict[str, Any]]]:
    page = f"/projects/{w.project}"
    garbage = ["", "bogus", BIG, "-1", str(HUGE), "1e308", "NaN"]
    yield from ((f"{page}/ranking/", {"sampling": v}) for v in [None, *garbage])
    yield from ((f"{page}/ranking/", {"sampling": "entropy", "focus": v}) for v in garbage[1:])
    yield from ((f"{page}/export/", {"format": v}) for v in garbage)
    yield from ((f"{page}/export/", {"format": "coco", "images": v}) for v in garbage)
    yield from ((f"{page}/export/", {"format": "coco", "version": v}) for v in [*garbage[1:], w.their_version, 10**9])
    yield from (
        (f"{page}/export/", {"format": "coco", "include_unlabelled": "on", "split_seed": v}) for v in garbage[1:]
    )
    yield from ((f"{page}/members/", {"op": v, "membership": w.member, "role": "viewer"}) for v in [None, *garbage])
    yield from (
        (f"{page}/members/", {"op": op, "membership": w.member, "role": v})
        for op in ("add", "role")
        for v in [None, *garbage]
    )
    yield from ((f"{page}/members/", {"op": "add", "username": v, "role": "viewer"}) for v in [None, *garbage, "lena"])
    yield from (
        (f"{page}/members/", {"op": op, "membership": v, "role": "viewer"})
        for op in ("role", "remove")
        for v in [None, *garbage, w.their_member, 10**9]
    )
    yield (f"{page}/members/", {"op": "remove", "membership": w.lead_member})
    yield (f"{page}/members/", {"op": "role", "membership": w.lead_member, "role": "viewer"})
    yield from ((f"{page}/delete/", {"confirm": v}) for v in [None, *garbage, "elsewhere"])
    yield from ((f"{page}/upload/", {"files": v}) for v in [None, *garbage])
    yield ("/projects/new/", {"name": "   "})
    yield ("/projects/new/", {})
    yield from (
        (f"/projects/{p}/{action}/", {})
        for p in (w.other, 10**9)
        for action in "upload next retrain ranking reanalyse compare-rankings export members delete".split()
    )
    yield from ((f"{page}/images/{i}/delete/", {}) for i in (w.their_image, 10**9))
    yield (f"/projects/{w.other}/images/{w.their_image}/delete/", {})


def test_form_actions_refuse_bad_input_and_store_nothing(w: SimpleNamespace, personas: dict[str, Any]) -> None:
    browser = Client(raise_request_exception=False)
    browser.force_login(personas["lead"])
    failures = []
    for url, fields in form_posts(w):
        data = {k: v for k, v in fields.items() if v is not None}
        before = rows()
        with transaction.atomic():
            response = browser.post(url, data)
        where = f"POST {url} {short(data)}: {response.status_code}"
        if response.status_code not in (302, 400, 403, 404):
            failures.append(where)
            continue
        if response.status_code == 302:
            page = browser.get(response["Location"]).content.decode()
            if not re.search(r'class="message[^"]*\b(error|warning|info)\b', page):
                failures.append(f"{where}, redirected to {response['Location']} without saying why")
        if rows() != before:
            failures.append(f"{where}, but rows changed")
    assert not failures, "\n".join(failures)
