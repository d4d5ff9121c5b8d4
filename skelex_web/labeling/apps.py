from django.apps import AppConfig


class LabelingConfig(AppConfig):
    name = "skelex_web.labeling"
