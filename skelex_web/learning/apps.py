from django.apps import AppConfig


class LearningConfig(AppConfig):
    name = "skelex_web.learning"
