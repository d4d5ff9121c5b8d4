from django.apps import AppConfig


class ExportsConfig(AppConfig):
    name = "skelex_web.exports"
    verbose_name = "Dataset versions and exports"
