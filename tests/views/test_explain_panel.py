"""The "why" panel and the drawing-readiness notice on Try it; accuracy on drawings on Evaluate."""

from apptest_support import quick_train, session_runs, trouser_png, wait_until

from fmnist import models

TRY_IT = "views/try_it.py"
EVALUATE = "views/evaluate.py"


def test_a_seed_model_is_called_not_drawing_ready_with_one_click_to_fix_it(new_session):
    at = new_session(TRY_IT)
    quick_train(at, "try")
    assert any(warning.value.startswith("This model has not learned from drawings") for warning in at.warning)
    at.button(key="train_drawing_ready").click().run()
    assert not at.exception
    newest = session_runs(at)[-1]
    assert newest.config.preset == models.RECOMMENDED_PRESET and newest.config.uses_drawings
    newest.job.request_stop()
    newest.job.wait(60)


def test_an_upload_shows_which_pixels_decided_and_five_nearest_training_images(new_session):
    at = new_session(TRY_IT)
    quick_train(at, "try")
    at.file_uploader(key="try_upload").set_value(("trouser.png", trouser_png(), "image/png")).run()
    assert not at.exception
    captions = [caption for image in at.tabs[1].image for caption in image.captions]
    assert any(caption.startswith("Red and yellow") for caption in captions)
    class_captions = [caption for caption in captions if caption in {
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"}]
    assert len(class_captions) == 5


def test_evaluate_shows_accuracy_on_drawings_beside_test_accuracy(new_session):
    at = new_session(EVALUATE)
    quick_train(at, "evaluate")
    assert not at.exception
    wait_until(at, lambda app: any(metric.label == "Accuracy on outline drawings" for metric in app.metric),
               "the drawing set to be drawn in the background")
    labels = [metric.label for metric in at.metric]
    assert {"Test accuracy (photos)", "Accuracy on outline drawings", "Accuracy on coloured-in drawings"} <= set(labels)
    outline = next(metric for metric in at.metric if metric.label == "Accuracy on outline drawings")
    assert outline.value.endswith("%")
