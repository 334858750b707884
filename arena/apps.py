from django.apps import AppConfig


class ArenaConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "arena"
    verbose_name = "Blind A/B arena"

    def ready(self) -> None:
        from core import hooks

        from .services import versions_in_open_comparisons

        hooks.register(hooks.RETENTION_KEEP, versions_in_open_comparisons)
