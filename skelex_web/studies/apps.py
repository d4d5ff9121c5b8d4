from django.apps import AppConfig


class StudiesConfig(AppConfig):
    name = "skelex_web.studies"
