"""Annotations: validation, provenance from suggestions, optimistic concurrency, audit trail."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from skelex_web.audit.models import AuditEvent
from skelex_web.labeling.models import Annotation, Suggestion
from tests.factories import AnnotationFactory, ImageFactory, SuggestionFactory


@pytest.fixture
def image(project: Any) -> Any:
    return ImageFactory(project=project, rows=400, cols=300)


def box(image: Any, **extra: Any) -> dict[str, Any]:
    return {"image": image.pk, "kind": "box", "label": "fracture", "x0": 10, "y0": 20, "x1": 110, "y1": 220, **extra}


INVALID = [
    ({"label": "tumour"}, "label"),
    ({"x1": 5}, "box"),
    ({"x1": 301}, "box"),
    ({"kind": "polygon"}, "kind"),
]


@pytest.mark.parametrize("change,field", INVALID)
def test_invalid_box_answers_400_with_field_errors(change: Any, field: str, image: Any, client_for: Any) -> None:
    response = client_for("annotator").post("/api/annotations/", box(image, **change), format="json")
    assert response.status_code == 400, response.content
    assert field in response.json()["errors"]
    assert not Annotation.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "head,value,ok",
    [
        ("abnormal", "yes", True),
        ("abnormal", "unknown", True),
        ("abnormal", "maybe", False),
        ("tumour_type", "benign", True),
        ("colour", "red", False),
    ],
)
def test_head_answers_are_checked_against_the_schema(
    head: str, value: str, ok: bool, image: Any, client_for: Any
) -> None:
    body = {"image": image.pk, "kind": "head", "head": head, "value": value}
    response = client_for("annotator").post("/api/annotations/", body, format="json")
    assert response.status_code == (201 if ok else 400), response.content
    assert Annotation.objects.count() == (1 if ok else 0)


def test_second_answer_to_the_same_head_is_a_conflict(image: Any, client_for: Any) -> None:
    client = client_for("annotator")
    body = {"image": image.pk, "kind": "head", "head": "implant", "value": "no"}
    first = client.post("/api/annotations/", body, format="json").json()
    response = client.post("/api/annotations/", {**body, "value": "yes"}, format="json")
    assert response.status_code == 409
    assert response.json()["current"]["id"] == first["id"]
    assert response.json()["detail"] == (
        f"You have answered 'implant' on this image already (annotation {first['id']}, version 1): "
        "update that answer instead."
    )
    assert Annotation.objects.get().value == "no"


def test_stale_edit_gets_409_and_the_first_edit_stays(image: Any, personas: Any, client_for: Any) -> None:
    ann = AnnotationFactory(image=image, author=personas["annotator"])
    reviewer, annotator = client_for("reviewer"), client_for("annotator")

    first = reviewer.patch(f"/api/annotations/{ann.pk}/", {"version": 1, "x1": 200}, format="json")
    assert first.status_code == 200 and first.json()["version"] == 2
    second = annotator.patch(f"/api/annotations/{ann.pk}/", {"version": 1, "x1": 120}, format="json")
    assert second.status_code == 409
    assert second.json()["current"]["x1"] == 200 and second.json()["current"]["version"] == 2

    ann.refresh_from_db()
    assert (ann.x1, ann.version, ann.updated_by) == (200, 2, personas["reviewer"])
    stale_delete = annotator.delete(f"/api/annotations/{ann.pk}/?version=1")
    assert stale_delete.status_code == 409
    assert not Annotation.objects.get(pk=ann.pk).is_deleted


def test_every_change_is_audited_with_before_and_after(image: Any, client_for: Any) -> None:
    client = client_for("annotator")
    created = client.post("/api/annotations/", box(image), format="json").json()
    client.patch(f"/api/annotations/{created['id']}/", {"version": 1, "label": "lesion"}, format="json")
    client.delete(f"/api/annotations/{created['id']}/?version=2")

    events = list(AuditEvent.objects.order_by("id").values_list("action", "before", "after"))
    assert [e[0] for e in events] == ["annotation.create", "annotation.update", "annotation.delete"]
    assert events[1][1]["label"] == "fracture" and events[1][2]["label"] == "lesion"
    assert events[2][2]["is_deleted"] is True
    # Soft delete: the row stays (provenance), hidden from the default list.
    assert Annotation.objects.get(pk=created["id"]).is_deleted
    assert client.get(f"/api/annotations/?image={image.pk}").json()["count"] == 0


def test_suggestion_provenance_accepted_edited_rejected(image: Any, personas: Any, client_for: Any) -> None:
    client = client_for("annotator")
    s_accept, s_edit, s_reject = (SuggestionFactory(image=image, rank=i) for i in range(3))

    accepted = client.post(f"/api/suggestions/{s_accept.pk}/accept/").json()["annotation"]
    edited = client.post(
        "/api/annotations/",
        box(image, x0=s_edit.x0, y0=s_edit.y0, x1=s_edit.x1 + 15, y1=s_edit.y1, suggestion=s_edit.pk),
        format="json",
    ).json()
    client.post(f"/api/suggestions/{s_reject.pk}/reject/")

    assert accepted["origin"] == "suggestion-accepted" and accepted["model_version"] == s_accept.model_version_id
    assert edited["origin"] == "suggestion-edited" and edited["suggestion"] == s_edit.pk
    states = dict(Suggestion.objects.values_list("pk", "state"))
    assert states == {s_accept.pk: "accepted", s_edit.pk: "edited", s_reject.pk: "rejected"}
    assert Suggestion.objects.get(pk=s_reject.pk).resolved_by == personas["annotator"]
    # Resolving twice is refused.
    assert client.post(f"/api/suggestions/{s_reject.pk}/accept/").status_code == 400


def test_another_projects_suggestion_is_refused_as_one_that_does_not_exist(
    image: Any, other_project: Any, client_for: Any
) -> None:
    foreign = SuggestionFactory(image=ImageFactory(project=other_project))
    client = client_for("annotator")
    said = []
    for pk in (foreign.pk, 10**6):
        response = client.post("/api/annotations/", box(image, suggestion=pk), format="json")
        assert response.status_code == 400, response.content
        said.append(str(response.json()["errors"]).replace(str(pk), "N"))
    # The same words for both: the answer must not tell which ids exist in other projects.
    assert said[0] == said[1]
    assert Suggestion.objects.get(pk=foreign.pk).state == "pending" and not Annotation.objects.exists()


def test_accept_all_turns_every_pending_box_into_an_annotation(image: Any, client_for: Any) -> None:
    for i in range(3):
        SuggestionFactory(image=image, rank=i)
    response = client_for("annotator").post(f"/api/images/{image.pk}/accept-all/")
    assert response.status_code == 200 and len(response.json()) == 3
    assert set(Annotation.objects.values_list("origin", flat=True)) == {"suggestion-accepted"}
    assert not Suggestion.objects.filter(state="pending").exists()


def test_annotators_cannot_edit_each_others_work(image: Any, personas: Any, client_for: Any) -> None:
    ann = AnnotationFactory(image=image, author=personas["reviewer"])
    response = client_for("annotator").patch(f"/api/annotations/{ann.pk}/", {"version": 1, "x1": 99}, format="json")
    assert response.status_code == 403
    # The code tells the viewer no retry will do: it takes the change back instead of keeping it.
    assert response.json() == {
        "detail": "Annotators may only change their own annotations.",
        "code": "not_your_annotation",
    }
    assert Annotation.objects.get(pk=ann.pk).version == 1
    deleted = client_for("annotator").delete(f"/api/annotations/{ann.pk}/?version=1")
    assert deleted.status_code == 403 and deleted.json()["code"] == "not_your_annotation"
    assert not Annotation.objects.get(pk=ann.pk).is_deleted


def test_a_rejection_can_be_undone_and_the_suggestion_accepted_after(
    image: Any, personas: Any, client_for: Any
) -> None:
    client = client_for("annotator")
    s = SuggestionFactory(image=image)
    client.post(f"/api/suggestions/{s.pk}/reject/")
    reopened = client.post(f"/api/suggestions/{s.pk}/reopen/")
    assert reopened.status_code == 200 and reopened.json()["state"] == "pending"
    assert reopened.json()["resolved_by"] is None
    assert client.post(f"/api/suggestions/{s.pk}/accept/").status_code == 201
    # Only rejected suggestions reopen; viewers cannot.
    assert client.post(f"/api/suggestions/{s.pk}/reopen/").status_code == 400
    assert client_for("viewer").post(f"/api/suggestions/{s.pk}/reopen/").status_code == 403
    actions = list(AuditEvent.objects.order_by("id").values_list("action", flat=True))
    assert actions == ["suggestion.reject", "suggestion.reopen", "annotation.create"]


@pytest.mark.parametrize("kind", ["box", "head", "suggested box"])
def test_a_create_sent_again_with_its_client_uid_answers_the_first_row(kind: str, image: Any, client_for: Any) -> None:
    client = client_for("annotator")
    key = str(uuid.uuid4())
    if kind == "box":
        body = box(image, client_uid=key)
    elif kind == "head":
        body = {"image": image.pk, "kind": "head", "head": "implant", "value": "no", "client_uid": key}
    else:
        s = SuggestionFactory(image=image)
        body = box(image, x0=s.x0, y0=s.y0, x1=s.x1, y1=s.y1, suggestion=s.pk, client_uid=key)

    first = client.post("/api/annotations/", body, format="json")
    assert first.status_code == 201, first.content
    # The reply was lost and the box moved meanwhile: the repeat finds the row as the first send made it.
    again = client.post("/api/annotations/", {**body, "x1": 100, "value": "yes"}, format="json")
    assert again.status_code == 200, again.content
    assert again.json() == first.json()
    assert first.json()["client_uid"] == key
    assert Annotation.objects.count() == 1
    assert list(AuditEvent.objects.values_list("action", flat=True)) == ["annotation.create"]


def test_another_users_client_uid_is_refused(image: Any, personas: Any, client_for: Any) -> None:
    key = str(uuid.uuid4())
    mine = client_for("annotator").post("/api/annotations/", box(image, client_uid=key), format="json")
    theirs = client_for("reviewer").post("/api/annotations/", box(image, client_uid=key, x0=1), format="json")
    assert mine.status_code == 201
    assert theirs.status_code == 409
    assert "client_uid" in theirs.json()["detail"] and "current" not in theirs.json()
    assert list(Annotation.objects.values_list("author", "x0")) == [(personas["annotator"].pk, 10)]
    # A key names a record on one image: the same key elsewhere is another record.
    elsewhere = ImageFactory(project=image.project)
    other = client_for("reviewer").post("/api/annotations/", box(elsewhere, client_uid=key), format="json")
    assert other.status_code == 201


def test_answering_a_finding_yourself_resolves_the_models_prediction(image: Any, client_for: Any) -> None:
    def predict(head: str, answer: str) -> Any:
        return SuggestionFactory(
            image=image, kind="head", head=head, label="", value={"answer": answer, "probabilities": {answer: 0.8}}
        )

    same, other, untouched = predict("abnormal", "yes"), predict("implant", "yes"), predict("tumour_type", "benign")
    box = SuggestionFactory(image=image)
    client = client_for("annotator")
    for head, value in (("abnormal", "yes"), ("implant", "no")):
        body = {"image": image.pk, "kind": "head", "head": head, "value": value}
        assert client.post("/api/annotations/", body, format="json").status_code == 201
    states = dict(Suggestion.objects.values_list("pk", "state"))
    # Agreeing counts as accepting it, disagreeing as rejecting; nothing else is touched.
    assert (states[same.pk], states[other.pk]) == ("accepted", "rejected")
    assert (states[untouched.pk], states[box.pk]) == ("pending", "pending")
    assert Annotation.objects.get(head="implant").origin == "manual"
    resolved = AuditEvent.objects.filter(action="suggestion.resolve").values_list("target_id", flat=True)
    assert sorted(int(t) for t in resolved) == sorted([same.pk, other.pk])


def test_an_update_that_changes_nothing_or_a_fixed_field_is_refused_and_keeps_the_version(
    image: Any, personas: Any, client_for: Any
) -> None:
    ann = AnnotationFactory(image=image, author=personas["annotator"])
    client = client_for("annotator")
    url = f"/api/annotations/{ann.pk}/"
    fixed = client.patch(url, {"version": 1, "origin": "imported", "author": 99}, format="json")
    assert fixed.status_code == 400
    assert fixed.json()["errors"] == {"author": ["cannot be changed"], "origin": ["cannot be changed"]}
    empty = client.patch(url, {"version": 1, "time_spent_ms": 5}, format="json")
    assert empty.status_code == 400 and empty.json()["errors"]["version"][0].startswith("nothing to change")
    ann.refresh_from_db()
    assert (ann.version, ann.origin) == (1, "manual")
    assert not AuditEvent.objects.filter(action="annotation.update").exists()
    assert client.patch(url, {"version": 1, "x1": 70}, format="json").json()["version"] == 2
