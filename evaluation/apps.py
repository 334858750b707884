from django.apps import AppConfig


class EvaluationConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "evaluation"
    verbose_name = "Automatic evaluation"

    def ready(self) -> None:
        from core import hooks

        from . import judges, services

        hooks.register(hooks.VERSION_REGISTERED, services.queue_evaluation_if_possible)
        hooks.register(hooks.TOXICITY_JUDGE, judges.judge_for_cleaning)
        hooks.register(hooks.PROMOTION_CHECK, services.promotion_check)
        hooks.register(hooks.PROMPTS_IMPORTED, services.evaluate_unevaluated_versions)
