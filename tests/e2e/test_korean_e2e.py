"""One Korean visit (``?lang=ko``) through every page in headless chromium with the real data.

A short seed run on Train, then Evaluate, Try it (a drawing), Look inside and Human vs model:
no exception anywhere, and no English sentence of the catalogue in what the page shows. The
Train page in Korean is saved at 1440 × 900 for the README; the pages are also drawn at
1280 × 720 and at a phone's width (into artifacts/korean/) to look for cut-off labels.
"""

import re

import pytest
from babel.messages import pofile
from playwright.sync_api import Page, expect

from tests.e2e.browser_support import (
    REPO_ROOT,
    draw,
    drawing_canvas,
    expect_no_exception,
    go_to,
    open_app,
    save_screenshot,
    set_number,
    training_status,
    wait_for_app_run,
)

pytestmark = pytest.mark.browser

KOREAN_CATALOGUE = REPO_ROOT / "locales" / "ko" / "LC_MESSAGES" / "messages.po"
PLACEHOLDER = re.compile(r"\{[a-z_]+\}")
LAYOUT_DIRECTORY = REPO_ROOT / "artifacts" / "korean"
SCREENSHOT_VIEWPORT = {"width": 1440, "height": 900}
OTHER_VIEWPORTS = {"1280x720": {"width": 1280, "height": 720}, "phone": {"width": 390, "height": 844}}
PAGES = [("둘러보기", "패션 MNIST 둘러보기"), ("훈련", "신경망 훈련하기"), ("평가", "모델 평가"),
         ("직접 해 보기", "내 그림으로 직접 해 보기"), ("모델 들여다보기", "모델 들여다보기"), ("사람 대 모델", "사람 대 모델")]
"""Each page's link in the sidebar and its title, in Korean."""


def english_sentences() -> set[str]:
    """The catalogue's English pieces of two words or more (between placeholders), as in tests/views."""
    with KOREAN_CATALOGUE.open("rb") as stream:
        message_ids = [message.id if isinstance(message.id, str) else message.id[0]
                       for message in pofile.read_po(stream) if message.id]
    sentences = set()
    for message_id in message_ids:
        for part in PLACEHOLDER.split(message_id.replace("**", "")):
            if len(part.strip(" .,:;").split()) >= 2:
                sentences.add(part.strip(" .,:;"))
    return sentences


def expect_korean(page: Page, where: str) -> None:
    """No exception, and none of the catalogue's English sentences in the page's visible text."""
    wait_for_app_run(page)
    expect_no_exception(page)
    shown = page.locator("body").inner_text()
    leftovers = sorted(sentence for sentence in english_sentences() if sentence in shown)
    assert leftovers == [], f"English on {where}: {leftovers}"


def test_a_korean_visit_through_every_page(app_server, new_page):
    page = new_page()
    page.set_viewport_size(SCREENSHOT_VIEWPORT)
    open_app(page, f"{app_server.url}/?lang=ko", heading="패션 MNIST 둘러보기")
    expect(page.get_by_text("출처:")).to_be_visible()
    expect_korean(page, "Explore")
    page.get_by_role("tab", name="클래스 분포와 평균 이미지").click()
    expect_korean(page, "Explore, class balance")

    go_to(page, "훈련", "신경망 훈련하기")
    expect_korean(page, "Train, before a run")
    set_number(page, "에포크", 2)
    set_number(page, "훈련 샘플 수 제한", 2000)
    page.get_by_role("button", name="훈련 시작").click()
    expect(training_status(page)).to_contain_text("훈련을 마쳤습니다", timeout=180_000)
    expect(page.get_by_role("heading", name="내 실행 목록")).to_be_visible()
    expect_korean(page, "Train, after a run")
    assert "lang=ko" in page.url  # kept in the address, for a shared link
    page.get_by_test_id("stExpander").filter(has_text="설정").first.locator("summary").click()  # the charts up
    expect(page.get_by_role("button", name="훈련 시작")).to_be_hidden()
    save_screenshot(page, "train-korean.png")

    go_to(page, "평가", "모델 평가")
    expect(page.get_by_test_id("stMetric").filter(has_text="테스트 정확도").first).to_be_visible()
    expect_korean(page, "Evaluate")
    for tab in ("클래스별 점수", "럭키백"):
        page.get_by_role("tab", name=tab).click()
        expect_korean(page, f"Evaluate, {tab}")
    page.get_by_role("button", name="럭키백 뽑기").click()
    expect(page.get_by_text(re.compile(r"개 중 \d+개")).first).to_be_visible()
    expect_korean(page, "Evaluate, lucky bag")

    go_to(page, "직접 해 보기", "내 그림으로 직접 해 보기")
    draw(page, drawing_canvas(page), [[(0.35, 0.1), (0.3, 0.9)], [(0.65, 0.1), (0.7, 0.9)], [(0.35, 0.1), (0.65, 0.1)]])
    expect(page.get_by_text("모델이 보는 모습 (28 × 28)")).to_be_visible(timeout=30_000)
    expect_korean(page, "Try it, a drawing")

    go_to(page, "모델 들여다보기", "모델 들여다보기")
    expect(page.get_by_role("heading", name="클래스마다 하나의 템플릿")).to_be_visible(timeout=60_000)
    expect_korean(page, "Look inside")

    go_to(page, "사람 대 모델", "사람 대 모델")
    expect(page.get_by_text("10라운드 중 1라운드: 이것은 무엇일까요?")).to_be_visible(timeout=60_000)
    page.get_by_test_id("stMain").get_by_role("button", name="바지").click()
    expect(page.get_by_text(re.compile(r"^정답은 "))).to_be_visible()
    expect_korean(page, "Human vs model")

    LAYOUT_DIRECTORY.mkdir(parents=True, exist_ok=True)
    for size, viewport in OTHER_VIEWPORTS.items():
        page.set_viewport_size(viewport)
        page.wait_for_timeout(1500)  # a narrower window folds the sidebar away, with an animation
        for number, (link, heading) in enumerate(PAGES, start=1):
            # A phone: the sidebar folds itself away after each page change; unfold it and let its
            # slide-in animation end, so that the link is still when it is clicked.
            unfold = page.get_by_test_id("stExpandSidebarButton")
            if unfold.is_visible():
                unfold.click()
                expect(unfold).to_be_hidden()
                page.wait_for_timeout(1200)
            go_to(page, link, heading)
            expect_korean(page, f"{heading} at {size}")
            fold = page.get_by_test_id("stSidebarCollapseButton")
            if viewport["width"] < 640 and fold.is_visible():  # on a phone the open sidebar covers the page
                fold.click()
                page.wait_for_timeout(600)
            page.screenshot(path=LAYOUT_DIRECTORY / f"{number}-{size}.png", full_page=True)
