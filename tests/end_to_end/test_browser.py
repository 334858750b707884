"""The whole loop in a real browser (Playwright driving the system Chromium, no browser download):
sign up, annotate by keyboard, review, train a DPO version on the tiny model, activate it, and see
the annotator's next candidates come from it. Screenshots of each step go to var/test-artifacts/.
Also: every page fits a 390-px phone and a 1280-px desktop without horizontal scrolling.

Skips with a message when the Chromium binary or the playwright package is missing
(.ci/run installs the ``chromium`` apt package).
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from annotations.models import Judgement, PreferencePair
from tests.conftest import StubGenerator, run_jobs
from training.models import ModelVersion, TrainingRun

pytestmark = pytest.mark.django_db(transaction=True)

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "var" / "test-artifacts"
PASSWORD = "pw-for-tests-1"
PHONE, DESKTOP = 390, 1280


@pytest.fixture
def browser(live_server, monkeypatch, settings):
    """Chromium, closed before the live server stops (its keep-alive requests hold DB connections)."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no Chromium at {CHROMIUM}: install the chromium apt package (.ci/run does) to run browser tests")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    # Playwright's sync API keeps an event loop in this thread; the test's own ORM calls are still sync.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.EVAL_AUTO = False
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


def new_page(browser, width=DESKTOP):
    page = browser.new_context(viewport={"width": width, "height": 900}).new_page()
    page.set_default_timeout(15_000)
    return page


def log_in(browser, live_server, username, width=DESKTOP):
    page = new_page(browser, width)
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("form button[type=submit]")
    page.wait_for_url(lambda url: "/accounts/login/" not in url)
    return page


def shot(page, name):
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def wait_until(predicate, timeout=15.0):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_sign_up_annotate_review_train_activate(browser, live_server, filled_pool, make_user):
    make_user("rev", "reviewer")
    make_user("boss", "admin")

    # An annotator signs up and lands on the annotation page.
    page = new_page(browser)
    page.goto(f"{live_server.url}/signup/")
    page.fill("#id_username", "newbie")
    page.fill("#id_password1", "a-long-pass-phrase-7")
    page.fill("#id_password2", "a-long-pass-phrase-7")
    shot(page, "01-sign-up")
    page.click("form button[type=submit]")
    page.wait_for_url("**/annotate/")

    # Three choices by keyboard (keys 1, 2, 3), then one own rewrite (key 0).
    for done, key in enumerate("123", start=1):
        page.wait_for_selector("#candidates button")
        assert page.locator("#candidates button").count() == 3
        assert shown_version("newbie") == "tiny"
        if done == 1:
            shot(page, "02-annotate")
        page.keyboard.press(key)
        page.wait_for_function(f"document.getElementById('done-count').textContent === '{done}'")
    page.wait_for_selector("#candidates button")
    page.keyboard.press("0")
    page.fill("#own-rewrite", "please do not talk to me like that")
    shot(page, "03-own-rewrite")
    page.click("#own-form button[type=submit]")
    wait_until(lambda: Judgement.objects.filter(user__username="newbie").count() == 4)
    judged = Judgement.objects.filter(user__username="newbie")
    assert sorted(judged.values_list("chosen_position", flat=True).exclude(chosen_position=None)) == [1, 2, 3]
    assert judged.filter(kind="none", own_rewrite="please do not talk to me like that").exists()
    assert PreferencePair.objects.filter(judgement__user__username="newbie", status="pending").exists()

    # A reviewer approves all pending pairs on the review screen.
    review = log_in(browser, live_server, "rev")
    review.goto(f"{live_server.url}/review/?status=pending")
    review.check("thead input[type=checkbox]")
    review.select_option("select[name=action]", "approve")
    shot(review, "04-review")
    review.click("text=Apply to selected")
    review.wait_for_selector("text=approve:")
    shot(review, "05-reviewed")
    assert not PreferencePair.objects.filter(status="pending").exists()
    approved = PreferencePair.objects.filter(status="approved").count()
    assert approved >= 4

    # Staff start a DPO run; the training job runs here, in-process, with a real RQ worker.
    staff = log_in(browser, live_server, "boss")
    staff.goto(f"{live_server.url}/training/runs/")
    staff.select_option("select[name=kind]", "dpo")
    staff.fill("input[name=max_steps]", "2")
    staff.fill("input[name=batch_size]", "2")
    staff.fill("input[name=learning_rate]", "0.001")
    shot(staff, "06-start-dpo")
    staff.click("form.filters button[type=submit]")  # not the first-model offer above it
    staff.wait_for_url("**/training/runs/*/")
    run = TrainingRun.objects.get()
    added = run.data_snapshot["cleaning"]["pairs"]["input_rejections"]  # the form's ticked default
    assert run.kind == "dpo" and added > 0 and run.data_snapshot["count"] == approved + added
    run_jobs("training")
    run.refresh_from_db()
    assert run.status == "succeeded", run.traceback
    staff.wait_for_function("document.getElementById('status').textContent === 'succeeded'")
    version = run.result_version
    staff.wait_for_selector(f"#result:has-text('New version: {version.name}')")
    shot(staff, "07-run-finished")

    # Staff activate the new version on the versions page.
    staff.goto(f"{live_server.url}/training/versions/")
    form = staff.locator(f"form[action$='/training/versions/{version.pk}/activate/']")
    form.locator("input[name=reason]").fill("first DPO round, not evaluated yet")
    if form.locator("input[name=override]").count():
        form.locator("input[name=override]").check()
    form.locator("button[type=submit]").click()
    staff.wait_for_selector(f"text={version.name} is now active")
    shot(staff, "08-activated")
    assert ModelVersion.objects.active() == version

    # The generation worker refills the pool for the new version (stub sampler: no model load),
    # and the annotator's next candidates come from it.
    from training.generation import refill_pool

    refill_pool(version.pk, target=4, generator_factory=lambda path: StubGenerator())
    # The item already on the annotator's screen (shown before the switch) is still theirs to answer.
    page.goto(f"{live_server.url}/annotate/")
    page.wait_for_selector("#candidates button")
    assert shown_version("newbie") == "tiny"
    page.keyboard.press("1")
    for _ in range(300):  # the page fetches the next item after the answer is saved (slow on a busy machine)
        if shown_version("newbie") == version.name:
            break
        page.wait_for_timeout(100)
    page.wait_for_selector("#candidates button")
    assert shown_version("newbie") == version.name
    shot(page, "09-new-version-candidates")


def shown_version(username: str) -> str:
    """The version whose candidates are on the user's screen (the page itself no longer names it)."""
    from annotations.models import Assignment

    return Assignment.objects.filter(user__username=username).latest("shown_at").item.model_version.name


PAGES = {
    "anonymous": ["/accounts/login/", "/signup/"],
    "boss": [
        "/", "/annotate/", "/review/", "/review/{pair}/", "/arena/", "/arena/comparisons/", "/quality/",
        "/quality/gold/", "/training/versions/", "/training/runs/", "/training/runs/{run}/", "/accounts/password_change/",
    ],
}


def test_every_page_fits_a_phone_and_a_desktop(browser, live_server, filled_pool, make_user, annotator):
    from annotations import services as annotation_services

    make_user("boss", "admin")
    shown = annotation_services.next_assignment(user=annotator)
    annotation_services.submit_judgement(user=annotator, assignment_id=shown.pk, candidate_id=shown.candidate_order[0])
    long_line = "step 1/3 loss=0.6931 " + "x" * 400  # a tqdm-like log line with no break opportunity
    run = TrainingRun.objects.create(
        kind="dpo", parent=filled_pool, output_directory="dpo-wide", log_tail=long_line, hyperparameters={"max_steps": 3}
    )
    ids = {"pair": PreferencePair.objects.first().pk, "run": run.pk}
    overflowing = []
    for user, paths in PAGES.items():
        for width in (PHONE, DESKTOP):
            page = new_page(browser, width) if user == "anonymous" else log_in(browser, live_server, user, width)
            for path in paths:
                page.goto(live_server.url + path.format(**ids))
                page.wait_for_load_state("networkidle")
                scroll, inner = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
                if path == "/training/runs/{run}/":  # its log line overflowed at 1280 px before the CSS fix
                    shot(page, f"10-run-page-{width}px")
                if scroll > inner:
                    overflowing.append(f"{path} at {width}px: {scroll} > {inner}")
                    shot(page, f"overflow-{width}-{path.strip('/').replace('/', '-') or 'home'}")
            page.context.close()
    assert not overflowing, "pages scroll sideways:\n" + "\n".join(overflowing)
