from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "skelex_web.projects"

    def ready(self) -> None:
        from . import checks  # noqa: F401  (registers the system checks)
