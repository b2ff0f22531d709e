"""The committed board site in a real browser: Playwright driving Debian's chromium.

Each page type loads from file:// without console errors; sorting, filtering, entry links and
the compare view work; every picture has a size. A screenshot of each page type is saved to a
temporary folder (printed with -s).
"""
import re
import shutil
from pathlib import Path

import pytest

SITE = Path(__file__).resolve().parent.parent / "leaderboards" / "site"
BOARD = SITE / "synth-1.0-test-dcase2023"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]

sync_api = pytest.importorskip("playwright.sync_api",
                               reason="playwright is not installed (pip; see requirements-lock)")
if not Path(CHROMIUM).is_file():
    pytest.skip("no chromium binary (apt-get install chromium; .ci/run installs it)",
                allow_module_level=True)


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = tmp_path_factory.mktemp("board-screenshots")
    print(f"\nboard screenshots: {folder}")
    return folder


@pytest.fixture
def page(browser):
    """A page that records console errors, page errors and any request leaving file://."""
    pg = browser.new_page(viewport={"width": 1400, "height": 900})
    pg.problems = []
    pg.on("console", lambda m: m.type == "error" and pg.problems.append(f"console: {m.text}"))
    pg.on("pageerror", lambda exc: pg.problems.append(f"page error: {exc}"))
    pg.on("request", lambda r: not r.url.startswith("file://")
          and pg.problems.append(f"network: {r.url}"))
    yield pg
    pg.close()


def _open(page, path: Path, query: str = ""):
    page.goto(path.as_uri() + query)
    page.wait_for_load_state("load")


def _check_pictures(page):
    """Every svg and img is drawn with a non-zero size."""
    boxes = page.eval_on_selector_all(
        "svg, img", "els => els.map(e => { const r = e.getBoundingClientRect();"
                    " return [e.tagName, e.getAttribute('class'), r.width, r.height]; })")
    visible = [b for b in boxes if b[1] != "ci" or b[2]]  # interval bars of hidden rows aside
    assert visible, "no pictures on the page"
    assert all(w > 0 and h > 0 for _, _, w, h in visible), [b for b in visible if not b[2]]
    return len(visible)


def _rows(page, table: str) -> list[str]:
    return page.eval_on_selector_all(
        f"#{table} tbody tr:not(.hidden)",
        "rows => rows.map(r => r.querySelector('a.entry').getAttribute('href'))")


def test_index_lists_the_canonical_ranking(page, shots):
    _open(page, SITE / "index.html")
    assert page.locator("h1").inner_text() == "seldbench leaderboards"
    # each board lists its canonical entries, or all of them when it names none
    sections = page.locator("section")
    assert sections.count() >= 2
    assert sections.first.locator("table tbody tr").count() == 3  # synth@1.0: CRNN, EINV2, CRATI
    for i in range(sections.count()):
        sec = sections.nth(i)
        canon, explore = map(int, re.findall(r"(\d+) canonical and (\d+) exploratory",
                                             sec.locator("p").first.inner_text())[0])
        assert sec.locator("table tbody tr").count() == (canon or explore)
    _check_pictures_if_any(page)
    page.screenshot(path=str(shots / "index.png"), full_page=True)
    page.locator("section h2 a").first.click()
    page.wait_for_load_state("load")
    assert page.url.endswith("synth-1.0-test-dcase2023/index.html")
    assert not page.problems, page.problems


def _check_pictures_if_any(page):
    if page.locator("svg, img").count():
        _check_pictures(page)


def test_board_sorts_filters_and_links_to_entries(page, shots):
    _open(page, BOARD / "index.html")
    assert _check_pictures(page) >= 19  # one interval bar per row
    page.screenshot(path=str(shots / "board.png"), full_page=True)
    before = _rows(page, "exploratory")
    seld = page.locator("#exploratory th[data-fig='SELD'] button")
    seld.click()  # ascending: the ranking order (lower is better)
    ascending = _rows(page, "exploratory")
    seld.click()
    descending = _rows(page, "exploratory")
    assert descending == ascending[::-1] and descending != before
    values = page.evaluate("""() => {
        const th = document.querySelector("#exploratory th[data-fig='SELD']");
        const i = Array.from(th.parentNode.children).indexOf(th);
        return Array.from(document.querySelectorAll("#exploratory tbody tr"))
            .map(r => +r.cells[i].dataset.v); }""")
    assert len(values) == len(before) and values == sorted(values, reverse=True)
    # a filter hides rows; the free-text filter too
    total = len(before)
    page.select_option("select[data-filter='model']", "crnn")
    assert 0 < len(_rows(page, "exploratory")) < total
    page.select_option("select[data-filter='model']", "")
    page.fill("input[data-filter='text']", "h100")
    assert 0 < len(_rows(page, "exploratory")) < total
    page.fill("input[data-filter='text']", "")
    assert len(_rows(page, "exploratory")) == total
    # the pooled flag opens to its detail
    pooled = page.locator("details.pooled").first
    pooled.locator("summary").click()
    assert "seeds" in pooled.inner_text()
    # an entry link opens its page
    href = _rows(page, "canonical")[0]
    page.locator(f"#canonical a.entry[href='{href}']").click()
    page.wait_for_load_state("load")
    assert page.url.endswith(href) and "Per class" in page.content()
    assert not page.problems, page.problems


def test_entry_page_draws_heatmap_and_curves(page, shots):
    entry = next(BOARD.glob("crati-02840945-*.html"))
    _open(page, entry)
    assert page.locator("svg.heatmap").count() == 1
    assert page.locator("svg.curve").count() == 6  # loss and five validation figures
    assert page.locator("svg.curve polyline").count() == 6 * 3  # one line per seed
    _check_pictures(page)
    assert "seldbench rerun leaderboards/runs/synth/crati/" in page.locator("pre.cmd").inner_text()
    page.screenshot(path=str(shots / "entry.png"), full_page=True)
    assert not page.problems, page.problems


def test_compare_view_highlights_per_class_differences(page, shots):
    crnn = next(BOARD.glob("crnn-8aefc4be-cpu-*.html")).stem
    crati = next(BOARD.glob("crati-02840945-*.html")).stem
    _open(page, BOARD / "compare.html", f"?a={crnn}&b={crati}")
    assert page.locator("#cmp-a").input_value() == crnn
    rows = page.locator("#cmp-out tbody tr")
    assert rows.count() == 1 + 13  # overall and 13 classes
    assert page.locator("#cmp-out td.better").count() > 0
    assert page.locator("#cmp-out td.worse").count() > 0  # e.g. F of domestic sounds
    page.screenshot(path=str(shots / "compare.png"), full_page=True)
    page.select_option("#cmp-b", crnn)
    assert page.locator("#cmp-out td.better").count() == 0
    assert not page.problems, page.problems
