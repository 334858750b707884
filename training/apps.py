from django.apps import AppConfig


class TrainingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "training"
    verbose_name = "Training and model versions"

    def ready(self) -> None:
        from core import hooks

        from . import generation, services

        hooks.register(hooks.POOL_LOW, generation.pool_may_be_low)
        hooks.register(hooks.PROMPTS_IMPORTED, services.start_first_sft_after_import)
