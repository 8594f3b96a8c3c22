"""The Explore page, driven through app.py with AppTest on a tiny 500/100-image dataset."""

import re

from apptest_support import plotly_array, plotly_figure

from fmnist.data import CLASS_NAMES

EXPLORE = "views/explore.py"


def gallery_captions(at) -> list[str]:
    """Captions of the gallery's images (first tab), e.g. ``"#12 Trouser"``."""
    gallery = at.tabs[0]
    assert gallery.label == "Gallery"
    return gallery.image[0].captions


def caption_index(caption: str) -> int:
    match = re.fullmatch(r"#(\d+) (.+)", caption)
    assert match, caption
    return int(match.group(1))


def expected_captions(labels, indices) -> list[str]:
    return [f"#{index} {CLASS_NAMES[labels[index]]}" for index in indices]


def test_app_opens_on_explore_with_source_and_split_sizes(new_session, app_environment):
    at = new_session()  # the default page

    assert not at.exception
    assert [title.value for title in at.title] == ["Explore Fashion-MNIST"]
    metrics = {metric.label: metric.value for metric in at.metric}
    assert metrics["Training images"] == "500"
    assert metrics["Test images"] == "100"
    assert metrics["Classes"] == "10"
    sources = [caption.value for caption in at.caption if caption.value.startswith("Source:")]
    assert sources == [f"Source: **local IDX files in {app_environment.directory}**, the official train/test split."]


def test_class_balance_chart_counts_the_tiny_dataset(new_session, app_environment):
    at = new_session(EXPLORE)

    assert not at.exception
    bars = {trace["name"]: plotly_array(trace["y"]) for trace in plotly_figure(at, "class_distribution")["data"]}
    assert bars["training"].tolist() == [50] * 10
    assert bars["test"].tolist() == [10] * 10


def test_gallery_pages_through_the_training_items_in_order(new_session, app_environment):
    labels = app_environment.y_train
    at = new_session(EXPLORE)

    assert gallery_captions(at) == expected_captions(labels, range(30))
    assert "Items 1-30 of 500." in [caption.value for caption in at.caption]
    assert at.number_input(key="gallery_page").label == "Page (of 17)"

    at.number_input(key="gallery_page").set_value(2).run()
    assert not at.exception
    assert gallery_captions(at) == expected_captions(labels, range(30, 60))
    assert "Items 31-60 of 500." in [caption.value for caption in at.caption]

    at.number_input(key="gallery_page").set_value(17).run()
    assert gallery_captions(at) == expected_captions(labels, range(480, 500))


def test_draw_10_at_random_shows_10_distinct_items_then_back_to_browsing(new_session, app_environment):
    labels = app_environment.y_train
    at = new_session(EXPLORE)

    at.button(key="gallery_random").click().run()

    assert not at.exception
    captions = gallery_captions(at)
    indices = [caption_index(caption) for caption in captions]
    assert len(indices) == 10 and len(set(indices)) == 10
    assert captions == expected_captions(labels, indices)
    assert any(caption.value.startswith("10 items drawn at random from all classes of the training split")
               for caption in at.caption)

    at.button(key="gallery_back").click().run()
    assert not at.exception
    assert gallery_captions(at) == expected_captions(labels, range(30))


def test_class_filter_narrows_the_gallery_to_that_class(new_session, app_environment):
    at = new_session(EXPLORE)

    at.selectbox(key="gallery_class").set_value("Trouser").run()

    assert not at.exception
    trousers = [index for index, label in enumerate(app_environment.y_train) if CLASS_NAMES[label] == "Trouser"]
    assert len(trousers) == 50
    captions = gallery_captions(at)
    assert captions == [f"#{index} Trouser" for index in trousers[:30]]
    assert "Items 1-30 of 50." in [caption.value for caption in at.caption]

    at.radio(key="gallery_split").set_value("Test").run()
    assert not at.exception
    assert all(caption.endswith(" Trouser") for caption in gallery_captions(at))
    assert "Items 1-10 of 10." in [caption.value for caption in at.caption]

    at.button(key="gallery_random").click().run()
    captions = gallery_captions(at)
    assert len(captions) == 10 and all(caption.endswith(" Trouser") for caption in captions)


def test_closeup_names_the_class_of_the_chosen_item(new_session, app_environment):
    at = new_session(EXPLORE)

    at.number_input(key="closeup_index").set_value(123).run()

    assert not at.exception
    label = int(app_environment.y_train[123])
    assert any(markdown.value.startswith(f"**{CLASS_NAMES[label]} (") and markdown.value.endswith(f"label {label}")
               for markdown in at.markdown)
    assert "closeup_heatmap" in [chart.key for chart in at.get("plotly_chart")]


def test_a_first_visit_explains_the_app_and_its_four_steps_before_the_data_source(new_session):
    at = new_session(EXPLORE)
    texts = [element.value for element in at.main if getattr(element, "value", None).__class__ is str]
    assert any(text.startswith("**Teach a computer to recognise clothes") for text in texts)
    steps = [text for text in texts if re.match(r"^\*\*[1-4]\. ", text)]
    assert [step[2:4] for step in steps] == ["1.", "2.", "3.", "4."]
    source = next(index for index, text in enumerate(texts) if text.startswith("Source:"))
    assert source > texts.index(steps[-1])
    assert any(link.proto.page.endswith("train.py") or "Start here" in link.proto.label
               for link in at.get("page_link"))


def test_a_page_number_out_of_range_shows_the_last_page_and_says_so(new_session, app_environment):
    at = new_session(EXPLORE)
    at.number_input(key="gallery_page").set_value(2001).run()
    assert not at.exception
    assert gallery_captions(at) == expected_captions(app_environment.y_train, range(480, 500))
    assert "There are pages 1 to 17: showing page 17." in [caption.value for caption in at.caption]


def test_the_class_filter_and_page_survive_a_visit_to_another_page(new_session):
    at = new_session(EXPLORE)
    at.selectbox(key="gallery_class").set_value("Trouser").run()
    at.number_input(key="gallery_page").set_value(2).run()
    at.number_input(key="closeup_index").set_value(9).run()
    at.switch_page("views/train.py").run()
    at.switch_page(EXPLORE).run()
    assert not at.exception
    assert at.selectbox(key="gallery_class").value == "Trouser"
    assert at.number_input(key="gallery_page").value == 2
    assert at.number_input(key="closeup_index").value == 9
