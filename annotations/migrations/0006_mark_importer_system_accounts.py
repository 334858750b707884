"""Importer accounts created before system accounts existed join the ``system-account`` group, so the
quality reports stop counting them as annotators."""

from django.conf import settings
from django.db import migrations

SYSTEM_GROUP = "system-account"  # core.roles.SYSTEM_GROUP, frozen here as migrations are


def mark_importer_accounts(apps, schema_editor):
    """Accounts the importer created: no usable password ("!" prefix) and judgements behind imported pairs."""
    Group = apps.get_model("auth", "Group")
    PreferencePair = apps.get_model("annotations", "PreferencePair")
    User = apps.get_model(settings.AUTH_USER_MODEL)
    importer_ids = PreferencePair.objects.filter(source="imported").values("judgement__user_id")
    accounts = list(User.objects.filter(id__in=importer_ids, password__startswith="!"))
    if accounts:
        group, _ = Group.objects.get_or_create(name=SYSTEM_GROUP)
        group.user_set.add(*accounts)


class Migration(migrations.Migration):

    dependencies = [
        ('annotations', '0005_item_is_complete'),
        ('auth', '0012_alter_user_first_name_max_length'),
    ]

    operations = [
        migrations.RunPython(mark_importer_accounts, migrations.RunPython.noop),
    ]
