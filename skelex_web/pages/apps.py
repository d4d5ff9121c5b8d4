from django.apps import AppConfig


class PagesConfig(AppConfig):
    name = "skelex_web.pages"
