"""The model registry: registering checkpoints, choosing a project's backbone, re-analysis on activation."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from django.core.management import CommandError, call_command

from skelex_web.audit.models import AuditEvent
from skelex_web.learning import services
from skelex_web.learning.models import ModelVersion
from skelex_web.studies.models import ImageStatus
from tests.factories import ProjectFactory
from tests.workers.tasks.helpers import stored_image, tiny_checkpoint

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, list[Any], dict[str, Any]]]:
    """Messages the web would hand to the broker (the broker is outside this process)."""
    from skelex_web.celery import app

    calls: list[tuple[str, list[Any], dict[str, Any]]] = []
    monkeypatch.setattr(app, "send_task", lambda name, args=(), kwargs=None, **kw: calls.append((name, args, kwargs)))
    return calls


def test_registering_copies_the_checkpoint_to_media_and_is_idempotent(tiny_ckpt: Path, media_root: Path) -> None:
    first = services.register_backbone(name="tiny", checkpoint=tiny_ckpt)
    again = services.register_backbone(name="tiny again", checkpoint=tiny_ckpt)

    assert again.pk == first.pk and ModelVersion.objects.count() == 1
    stored = services.checkpoint_path(first)
    assert stored.is_file() and stored.is_relative_to(media_root)
    assert stored.read_bytes() == tiny_ckpt.read_bytes()
    assert json.loads(stored.with_suffix(".json").read_text())["config"]["img_size"] == 32
    assert first.config["model"]["patch_size"] == 8 and len(first.config["sha256"]) == 64
    assert AuditEvent.objects.filter(action="model.register").count() == 1


def test_a_file_that_is_not_our_checkpoint_is_refused(tmp_path: Path) -> None:
    weights = tmp_path / "x.safetensors"
    weights.write_bytes(b"12345678")
    with pytest.raises(services.RegistryError, match="not found beside"):
        services.register_backbone(name="x", checkpoint=weights)
    weights.with_suffix(".json").write_text('{"format": "something-else"}')
    with pytest.raises(services.RegistryError, match="not a skelex-mae checkpoint"):
        services.register_backbone(name="x", checkpoint=weights)


def test_projects_without_a_backbone_use_the_default(tiny_ckpt: Path, tmp_path: Path) -> None:
    plain = services.register_backbone(name="plain", checkpoint=tiny_checkpoint(tmp_path, seed=3, name="plain"))
    default = services.register_backbone(name="default", checkpoint=tiny_ckpt, default=True)
    project = ProjectFactory()
    assert services.resolve_backbone(project) == default
    project.active_backbone = plain
    assert services.resolve_backbone(project) == plain


def test_activating_a_backbone_requeues_every_image_with_progress(
    analysis_project: Any, media_root: Path, tmp_path: Path, sent: list[Any], django_capture_on_commit_callbacks: Any
) -> None:
    images = [stored_image(analysis_project, media_root, s, status=ImageStatus.ANALYSED) for s in range(3)]
    other = services.register_backbone(name="other", checkpoint=tiny_checkpoint(tmp_path, seed=4, name="other"))

    with django_capture_on_commit_callbacks(execute=True):
        queued = services.activate_backbone(analysis_project, other)

    analysis_project.refresh_from_db()
    assert queued == 3 and analysis_project.active_backbone == other
    assert {i.status for i in analysis_project.images.all()} == {ImageStatus.QUEUED}
    assert [name for name, _, _ in sent] == ["workers.analysis.analyse_images"]
    assert sorted(sent[0][1][0]) == sorted(i.pk for i in images) and sent[0][2] == {"model_version_id": other.pk}
    assert AuditEvent.objects.filter(action="project.activate_backbone", project=analysis_project).exists()


def test_register_model_command_registers_and_activates(
    tiny_ckpt: Path, sent: list[Any], django_capture_on_commit_callbacks: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    project = ProjectFactory(slug="wrist")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("register_model", "--checkpoint", str(tiny_ckpt), "--name", "tiny", "--activate", "wrist")
    project.refresh_from_db()
    assert project.active_backbone is not None and project.active_backbone.name == "tiny"
    assert "activated on project wrist" in capsys.readouterr().out
    # The same weights again under another name: one row, and the command says the name stayed.
    call_command("register_model", "--checkpoint", str(tiny_ckpt), "--name", "other")
    out = capsys.readouterr().out
    assert "these weights are registered already as model version" in out
    assert "'tiny'" in out and "--name 'other' was not applied" in out


def test_register_model_command_names_the_problem(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="not found"):
        call_command("register_model", "--checkpoint", str(tmp_path / "missing.safetensors"), "--name", "x")
    photo = tmp_path / "knee.jpg"
    photo.write_bytes(b"\xff\xd8\xff")
    with pytest.raises(CommandError, match=r"knee\.jpg is not a checkpoint: expected a \.safetensors file"):
        call_command("register_model", "--checkpoint", str(photo), "--name", "x")
    with pytest.raises(CommandError, match="no project"):
        call_command("register_model", "--checkpoint", "x.safetensors", "--name", "x", "--activate", "nope")


@pytest.mark.slow
def test_register_model_converts_a_hugging_face_folder(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    config = transformers.ViTMAEConfig(
        image_size=32, patch_size=8, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, decoder_hidden_size=32, decoder_num_hidden_layers=1, decoder_num_attention_heads=2,
        decoder_intermediate_size=64,
    )  # fmt: skip
    transformers.ViTMAEForPreTraining(config).save_pretrained(tmp_path / "hf")

    call_command("register_model", "--hf", str(tmp_path / "hf"), "--name", "from hf")

    model_version = ModelVersion.objects.get(name="from hf")
    assert services.checkpoint_path(model_version).is_file()
    assert model_version.config["model"]["layer_norm_eps"] == pytest.approx(1e-12)
