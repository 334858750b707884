"""Web pages. Thin: each action calls the same service the REST API calls."""
from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import review
from .forms import BulkReviewForm, EditGoldForm, PairFilterForm, SignupForm
from .models import Judgement, PreferencePair, Prompt, active_model_version
from core.roles import is_reviewer, role_of
from core.actions import ActionRefused



def reviewer_required(view):
    """Logged-in non-reviewers get 403 (not a login loop)."""

    def wrapped(request, *args, **kwargs):
        if not is_reviewer(request.user):
            raise PermissionDenied("Only reviewers can open the review screen.")
        return view(request, *args, **kwargs)

    wrapped.__name__ = view.__name__
    return wrapped


def signup(request):
    form = SignupForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user)
        messages.success(request, f"Welcome, {user.username}! Start by choosing the best rewrites.")
        return redirect("annotate")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def home(request):
    judgements = Judgement.objects.filter(user=request.user)
    context = {
        "role": role_of(request.user),
        "saved_choices": judgements.saved_choices().count(),
        "active_version": active_model_version(),
        "prompt_count": Prompt.objects.count(),
        "pending_pairs": PreferencePair.objects.pending().count() if is_reviewer(request.user) else None,
        "approved_pairs": PreferencePair.objects.approved().count(),
    }
    return render(request, "annotations/home.html", context)


@login_required
def annotate(request):
    return render(request, "annotations/annotate.html", {"skip_reasons": Judgement.SkipReason.choices})


@login_required
@reviewer_required
def review_list(request):
    filters = PairFilterForm(request.GET or None)
    pairs = filters.apply(PreferencePair.objects.with_annotator().order_by("-created_at", "-id"))
    page = Paginator(pairs, 50).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "annotations/review.html",
        {"filters": filters, "page": page, "query": query.urlencode(), "actions": review.BULK_ACTIONS},
    )


@login_required
@reviewer_required
@require_POST
def review_bulk(request):
    form = BulkReviewForm(request.POST, pair_ids=PreferencePair.objects.values_list("id", flat=True))
    if not form.is_valid():
        messages.error(request, "Select at least one pair and an action.")
    else:
        try:
            count = review.review_pairs(
                reviewer=request.user, pairs=form.cleaned_data["ids"], action=form.cleaned_data["action"],
                note=form.cleaned_data["note"],
            )
            messages.success(request, f"{form.cleaned_data['action']}: {count} pair(s) updated.")
        except ActionRefused as exc:
            messages.error(request, exc.message)
    return redirect(request.POST.get("next") or "review")


@login_required
@reviewer_required
def review_pair(request, pk: int):
    pair = get_object_or_404(PreferencePair.objects.with_annotator(), pk=pk)
    form = EditGoldForm(request.POST or None, initial={"chosen_text": pair.chosen_text})
    if request.method == "POST" and form.is_valid():
        try:
            review.edit_gold_rewrite(reviewer=request.user, pair=pair, text=form.cleaned_data["chosen_text"])
            messages.success(request, "Gold rewrite saved.")
            return redirect("review-pair", pk=pk)
        except ActionRefused as exc:
            form.add_error("chosen_text", exc.message)
    return render(request, "annotations/pair.html", {"pair": pair, "form": form, "events": pair.events.select_related("user")})
