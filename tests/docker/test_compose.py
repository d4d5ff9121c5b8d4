"""The production files in docker/, checked without a Docker engine: parsed and cross-checked
against settings (service names, ports, queues, every environment variable)."""

from __future__ import annotations

import re
import shlex
import tomllib
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from django.conf import settings

from tests.paths import REPO_ROOT

DOCKER = REPO_ROOT / "docker"
SERVICES = {"postgres", "redis", "migrate", "web", "worker-gpu", "worker-cpu", "beat"}
LONG_RUNNING = SERVICES - {"migrate"}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((DOCKER / "compose.yaml").read_text())


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    values = {}
    lines = (DOCKER / ".env.example").read_text().splitlines()
    for i, line in enumerate(lines):
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            assert i > 0 and lines[i - 1].startswith("#"), f"{key} has no one-line meaning above it"
            values[key] = value
    return values


def settings_env_vars() -> set[str]:
    source = (REPO_ROOT / "skelex_web" / "settings.py").read_text()
    names = set(re.findall(r"\benv(?:_bool|_int)?\(\s*\"([A-Z0-9_]+)\"", source))
    names |= set(re.findall(r"os\.environ\.get\(\s*\"([A-Z0-9_]+)\"", source))
    return names


def command(service: dict[str, Any]) -> list[str]:
    cmd = service["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else list(cmd)


def test_every_setting_variable_is_documented_and_nothing_else(env_example: dict[str, str]) -> None:
    read = settings_env_vars()
    assert {"DATABASE_URL", "REDIS_URL", "SECRET_KEY", "MEDIA_ROOT"} <= read  # the scan itself works
    documented = {k for k in env_example if not k.startswith("POSTGRES_")}
    assert documented == read


def test_services_and_dependencies(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert set(services) == SERVICES
    for name, service in services.items():
        for dep in service.get("depends_on", {}):
            assert dep in services, f"{name} depends on unknown {dep}"
        if name in LONG_RUNNING:
            assert "test" in service.get("healthcheck", {}), f"{name} has no health check"
    assert services["migrate"]["restart"] == "no"
    assert command(services["migrate"])[-2:] == ["migrate", "--noinput"]
    for name in ("web", "worker-gpu", "worker-cpu"):
        assert services[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_urls_point_at_the_compose_services(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    db = urlsplit(env_example["DATABASE_URL"])
    assert (db.scheme, db.hostname, db.port) == ("postgresql", "postgres", 5432)
    assert (db.username, db.password, db.path.lstrip("/")) == (
        env_example["POSTGRES_USER"],
        env_example["POSTGRES_PASSWORD"],
        env_example["POSTGRES_DB"],
    )
    for key in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_RESULT_BACKEND"):
        url = urlsplit(env_example[key])
        assert (url.scheme, url.hostname, url.port) == ("redis", "redis", 6379), key
    for name in ("migrate", "web", "worker-gpu", "worker-cpu"):
        assert compose["services"][name]["env_file"] == ".env"


def test_web_serves_asgi_on_the_published_port(compose: dict[str, Any]) -> None:
    web = compose["services"]["web"]
    cmd = command(web)
    assert cmd[0] == "daphne" and cmd[-1] == settings.ASGI_APPLICATION.replace(".application", ":application")
    port = cmd[cmd.index("-p") + 1]
    assert f"{port}:{port}" in web["ports"] and cmd[cmd.index("-b") + 1] == "0.0.0.0"
    assert f":{port}/" in " ".join(web["healthcheck"]["test"])


def test_workers_cover_every_queue_and_the_gpu_is_reserved(compose: dict[str, Any]) -> None:
    services = compose["services"]
    routed = {route["queue"] for route in settings.CELERY_TASK_ROUTES.values()} | {settings.CELERY_TASK_DEFAULT_QUEUE}
    consumed = {}
    for name in ("worker-gpu", "worker-cpu"):
        cmd = command(services[name])
        assert cmd[:4] == ["celery", "-A", "skelex_web", "worker"]
        consumed[name] = set(cmd[cmd.index("-Q") + 1].split(","))
        node = cmd[cmd.index("-n") + 1].split("@")[0]
        assert f"{node}@" in " ".join(services[name]["healthcheck"]["test"])
    assert consumed["worker-gpu"] == {"gpu"}
    assert consumed["worker-gpu"] | consumed["worker-cpu"] == routed
    devices = services["worker-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert devices[0]["driver"] == "nvidia" and "gpu" in devices[0]["capabilities"]
    assert "deploy" not in services["worker-cpu"]


def test_beat_sends_every_scheduled_task_to_a_queue_a_worker_consumes(compose: dict[str, Any]) -> None:
    services = compose["services"]
    beat = services["beat"]
    cmd = command(beat)
    assert cmd[:4] == ["celery", "-A", "skelex_web", "beat"]
    assert beat["build"]["dockerfile"] == "docker/Dockerfile.web"  # sends by name: no torch needed
    assert "redis" in beat["depends_on"] and "--schedule" in cmd
    schedule_file = cmd[cmd.index("--schedule") + 1]
    assert schedule_file in " ".join(beat["healthcheck"]["test"])  # the health check reads beat's own file
    consumed = set()
    for name in ("worker-gpu", "worker-cpu"):
        worker = command(services[name])
        consumed |= set(worker[worker.index("-Q") + 1].split(","))
    assert settings.CELERY_BEAT_SCHEDULE  # the stuck-image sweep is on by default
    for entry in settings.CELERY_BEAT_SCHEDULE.values():
        queue = app_router_queue(entry["task"])
        assert queue in consumed, f"{entry['task']} goes to {queue}, which no worker consumes"
        assert queue != "gpu", "a stalled GPU queue must not hold up the sweep that repairs it"


def app_router_queue(task_name: str) -> str:
    from skelex_web.celery import app

    return app.amqp.router.route({}, task_name)["queue"].name


def test_dockerfiles_exist_and_the_web_image_has_no_torch(compose: dict[str, Any]) -> None:
    for name, service in compose["services"].items():
        if "build" in service:
            assert (REPO_ROOT / service["build"]["dockerfile"]).is_file(), name
    web = (DOCKER / "Dockerfile.web").read_text()
    assert "pip install '.[web]'" in web and "ml]" not in web
    web_extra = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["web"]
    assert not [d for d in web_extra if re.match(r"(torch|torchvision|timm)\b", d)]
    worker = (DOCKER / "Dockerfile.worker-gpu").read_text()
    assert re.search(r"ARG CUDA_IMAGE=nvidia/cuda:\S+", worker) and "FROM ${CUDA_IMAGE}" in worker
    assert "'.[web,ml]'" in worker


def test_compose_variables_are_defined(compose: dict[str, Any], env_example: dict[str, str]) -> None:
    text = (DOCKER / "compose.yaml").read_text()
    for name in re.findall(r"(?<!\$)\$\{([A-Z0-9_]+)", text):
        assert name in env_example, f"compose uses ${{{name}}} which .env.example does not define"
