from core.roles import is_reviewer


def roles(request) -> dict:
    return {"is_reviewer": is_reviewer(getattr(request, "user", None))}
