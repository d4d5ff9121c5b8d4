"""Projects and label schemas: creation, validation with field errors, nothing stored on error."""

from __future__ import annotations

import re
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError

from skelex_web.audit.models import AuditEvent
from skelex_web.projects.models import Membership, Project
from skelex_web.projects.schema import ANATOMICAL_SITES, default_schema


def test_default_schema_mirrors_skelex_heads() -> None:
    schema = default_schema()
    heads = {h["name"]: h for h in schema["heads"]}
    assert set(heads) == {"abnormal", "tumour_type", "anatomical_site", "fracture_type", "implant"}
    assert heads["tumour_type"]["classes"] == ["malignant", "intermediate", "benign", "no_tumour"]
    assert len(heads["anatomical_site"]["classes"]) == 29 == len(set(ANATOMICAL_SITES))
    assert schema["box_labels"] == ["fracture", "lesion", "implant"]


def test_creating_a_project_makes_you_its_lead(client_for: Any, personas: Any) -> None:
    response = client_for("outsider").post("/api/projects/", {"name": "Hip study"}, format="json")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["role"] == "lead" and body["slug"] == "hip-study"
    assert body["label_schema"] == default_schema()
    assert Membership.objects.get(project_id=body["id"], user=personas["outsider"]).role == "lead"
    assert AuditEvent.objects.filter(action="project.create", target_id=str(body["id"])).exists()


BAD_SCHEMAS = [
    ({"box_labels": ["Fracture!"], "heads": []}, "box_labels[0]"),
    ({"box_labels": [], "heads": [{"name": "x", "kind": "binary", "classes": ["a"]}]}, "heads[0].classes"),
    ({"box_labels": [], "heads": [{"name": "x", "kind": "ordinal", "classes": ["a", "b"]}]}, "heads[0].kind"),
    (
        {"box_labels": [], "heads": [{"name": "x", "kind": "multiclass", "classes": ["a", "unknown"]}]},
        "heads[0].classes",
    ),
    (
        {
            "box_labels": [],
            "heads": [
                {"name": "x", "kind": "binary", "classes": ["n", "y"]},
                {"name": "x", "kind": "binary", "classes": ["n", "y"]},
            ],
        },
        "heads[1].name",
    ),
    ("not an object", "label_schema"),
]


@pytest.mark.parametrize("schema,field", BAD_SCHEMAS)
def test_invalid_schema_answers_400_with_field_errors_and_stores_nothing(
    schema: Any, field: str, project: Any, client_for: Any
) -> None:
    before = Project.objects.get(pk=project.pk).label_schema
    response = client_for("lead").patch(f"/api/projects/{project.pk}/", {"label_schema": schema}, format="json")
    assert response.status_code == 400
    assert field in response.json()["errors"]["label_schema"]
    assert Project.objects.get(pk=project.pk).label_schema == before

    count = Project.objects.count()
    response = client_for("lead").post("/api/projects/", {"name": "New", "label_schema": schema}, format="json")
    assert response.status_code == 400 and Project.objects.count() == count


def test_lead_changes_schema_and_it_is_audited(project: Any, client_for: Any) -> None:
    schema = {"box_labels": ["fracture"], "heads": [{"name": "fractured", "kind": "binary", "classes": ["no", "yes"]}]}
    response = client_for("lead").patch(f"/api/projects/{project.pk}/", {"label_schema": schema}, format="json")
    assert response.status_code == 200
    project.refresh_from_db()
    assert project.label_schema == schema
    event = AuditEvent.objects.get(action="project.update")
    assert event.after["label_schema"] == schema and event.before["label_schema"] == default_schema()


@pytest.mark.parametrize("flag,default", [("deidentify", True), ("keep_file_names", False)])
def test_privacy_settings_must_be_booleans(flag: str, default: bool, project: Any, client_for: Any) -> None:
    assert project.setting(flag) is default
    url = f"/api/projects/{project.pk}/"
    response = client_for("lead").patch(url, {"settings": {flag: "yes"}}, format="json")
    assert response.status_code == 400
    assert flag in response.json()["errors"]["settings"]
    response = client_for("lead").patch(url, {"settings": {flag: not default}}, format="json")
    assert response.status_code == 200, response.content
    project.refresh_from_db()
    assert project.setting(flag) is (not default)


def test_the_ranking_setting_is_one_of_the_sampling_strategies(project: Any, client_for: Any) -> None:
    from skelex_web.projects.models import SAMPLING
    from workers.ml.sampling import STRATEGIES

    assert set(SAMPLING) <= set(STRATEGIES) - {"cold_start"}  # every choice is one the worker runs
    assert project.setting("sampling") == "hybrid"
    url = f"/api/projects/{project.pk}/"
    response = client_for("lead").patch(url, {"settings": {"sampling": "loudest"}}, format="json")
    assert response.status_code == 400
    assert "must be one of hybrid, entropy" in str(response.json()["errors"]["settings"])
    response = client_for("lead").patch(url, {"settings": {"sampling": "ensemble"}}, format="json")
    assert response.status_code == 200, response.content
    project.refresh_from_db()
    assert project.setting("sampling") == "ensemble"


def test_the_focus_setting_names_one_of_the_project_s_findings(project: Any, client_for: Any) -> None:
    url = f"/api/projects/{project.pk}/"
    lead = client_for("lead")
    response = lead.patch(url, {"settings": {"focus": "spleen"}}, format="json")
    assert response.status_code == 400
    assert "'spleen' is not a finding of this project (abnormal, tumour_type" in str(response.json()["errors"])
    assert lead.patch(url, {"settings": {"focus": 3}}, format="json").status_code == 400
    # A schema that drops the finding in the same request is checked against the new schema.
    schema = {"heads": [h for h in project.label_schema["heads"] if h["name"] != "implant"]}
    both = lead.patch(url, {"label_schema": schema, "settings": {"focus": "implant"}}, format="json")
    assert both.status_code == 400
    response = lead.patch(url, {"settings": {"focus": "implant"}}, format="json")
    assert response.status_code == 200, response.content
    project.refresh_from_db()
    assert project.setting("focus") == "implant"
    assert client_for("annotator").patch(url, {"settings": {"focus": ""}}, format="json").status_code == 403


def test_last_lead_cannot_be_removed(project: Any, personas: Any, client_for: Any) -> None:
    lead_membership = Membership.objects.get(project=project, user=personas["lead"])
    response = client_for("lead").delete(f"/api/projects/{project.pk}/members/{lead_membership.pk}/")
    assert response.status_code == 400
    assert Membership.objects.filter(pk=lead_membership.pk).exists()


def test_last_lead_cannot_step_down_until_someone_else_is_lead(project: Any, personas: Any, client_for: Any) -> None:
    # A project without a lead could never again change members, schema or exports.
    lead = client_for("lead")
    mine = Membership.objects.get(project=project, user=personas["lead"])
    url = f"/api/projects/{project.pk}/members/{mine.pk}/"
    response = lead.patch(url, {"role": "reviewer"}, format="json")
    assert response.status_code == 400
    assert response.json()["errors"]["role"] == ["a project keeps at least one lead: make someone else lead first"]
    assert Membership.objects.get(pk=mine.pk).role == "lead"
    other = Membership.objects.get(project=project, user=personas["reviewer"])
    assert (
        lead.patch(f"/api/projects/{project.pk}/members/{other.pk}/", {"role": "lead"}, format="json").status_code
        == 200
    )
    assert lead.patch(url, {"role": "reviewer"}, format="json").status_code == 200
    assert Membership.objects.get(pk=mine.pk).role == "reviewer"


def test_images_list_filters_and_orders_by_priority(project: Any, client_for: Any) -> None:
    from tests.factories import AnnotationFactory, ImageFactory

    a = ImageFactory(project=project, body_part="HAND", status="analysed", al_priority=0.2)
    b = ImageFactory(project=project, body_part="LEG", status="failed", al_priority=0.9)
    c = ImageFactory(project=project, body_part="HAND", status="analysed", al_priority=None)
    AnnotationFactory(image=c, label="implant")
    client = client_for("viewer")

    def ids(query: str) -> list[int]:
        return [r["id"] for r in client.get(f"/api/images/?project={project.pk}&{query}").json()["results"]]

    assert ids("body_part=HAND") == [a.pk, c.pk]
    assert ids("status=failed") == [b.pk]
    assert ids("label=implant") == [c.pk]
    assert ids("ordering=-al_priority") == [b.pk, a.pk, c.pk]


def test_lists_take_a_page_size(project: Any, client_for: Any) -> None:
    from tests.factories import ImageFactory

    for _ in range(5):
        ImageFactory(project=project)
    client = client_for("viewer")
    page = client.get(f"/api/images/?project={project.pk}&page_size=2").json()
    assert (page["count"], len(page["results"])) == (5, 2) and "page_size=2" in page["next"]
    assert len(client.get(f"/api/images/?project={project.pk}").json()["results"]) == 5


def test_openapi_schema_is_served_to_signed_in_users(client_for: Any) -> None:
    response = client_for("viewer").get("/api/schema/")
    assert response.status_code == 200
    assert b"/api/annotations/" in response.content


def test_openapi_schema_generates_without_warnings(db: Any, tmp_path: Any) -> None:
    # A warning means a guessed type (an id typed as a string) or a hashed component name.
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
    schema = (tmp_path / "schema.yaml").read_text()
    assert "AnnotationKindEnum:" in schema and "ModelKindEnum:" in schema


def test_openapi_schema_says_what_the_action_endpoints_take_and_answer(client_for: Any) -> None:
    paths = client_for("viewer").get("/api/schema/?format=json").json()["paths"]

    def op(path: str, method: str) -> dict[str, Any]:
        return paths[path][method]  # type: ignore[no-any-return]

    def body(o: dict[str, Any], kind: str = "application/json") -> str:
        return str(o["requestBody"]["content"][kind]["schema"]["$ref"])

    export = op("/api/dataset-versions/{id}/export/", "post")
    assert body(export).endswith("/ExportStart") and set(export["responses"]) == {"202"}
    assert export["responses"]["202"]["content"]["application/json"]["schema"]["$ref"].endswith("/ExportJob")
    assert set(op("/api/projects/{project_id}/queue/next/", "post")["responses"]) == {"200", "204", "400"}
    assert set(op("/api/projects/{project_id}/retrain/", "post")["responses"]) == {"202"}
    assert set(op("/api/images/{image_id}/claim/", "post")["responses"]) == {"200", "409"}
    upload = op("/api/projects/{project_id}/images/upload/", "post")
    assert body(upload, "multipart/form-data").endswith("/ImageUpload") and {"200", "202"} <= set(upload["responses"])


def test_api_docs_work_offline_and_send_strangers_to_sign_in(client_for: Any, personas: Any) -> None:
    from django.test import Client

    client = Client()
    assert client.get("/api/docs/")["Location"].startswith("/accounts/login/")
    client.force_login(personas["viewer"])
    page = client.get("/api/docs/").content.decode()
    assert "cdn.jsdelivr" not in page and "unpkg" not in page, "no script from the internet"
    scripts = re.findall(r'src="(/static/[^"]+)"', page)
    assert any("swagger-ui-bundle" in s for s in scripts)
    from django.contrib.staticfiles import finders

    for src in scripts:  # what the app's static server (skelex_web/staticserve.py) finds and serves
        assert finders.find(src.removeprefix("/static/").split("?")[0]), src


def test_production_refuses_the_dev_secret_key(settings: Any) -> None:
    from skelex_web.settings import DEV_SECRET_KEY

    settings.DEBUG = False
    settings.SECRET_KEY = DEV_SECRET_KEY
    with pytest.raises(SystemCheckError, match="skelex.E001"):
        call_command("check")
    settings.SECRET_KEY = "a-long-random-production-key-0123456789abcdef"
    call_command("check")
