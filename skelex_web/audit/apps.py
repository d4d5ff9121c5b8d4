from django.apps import AppConfig


class AuditConfig(AppConfig):
    name = "skelex_web.audit"
