"""Try it: draw or upload a picture, see what the model sees and says; download the model and its metrics."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import re
import tempfile

import numpy as np
import streamlit as st

from fmnist import baseline, evaluation
from fmnist.preprocess import ImageError, PreparedImage, prepare_drawing, prepare_image
from views import choices, common, explain_panel, runs, server
from views.language import N_, _, format_percent

UPLOAD_TYPES = ["png", "jpg", "jpeg", "webp", "gif", "bmp"]
PICTURE_WIDTH = 160
"""Pictures are shown this wide. Uploads are shrunk to it here, not by st.image, which would round
the height of a 5000 x 10 panorama down to 0 pixels and fail."""
IMAGE_ERROR_MESSAGES = (
    N_("The file is empty: it contains no bytes."),
    N_("This file is not a picture we can read (PNG, JPEG, WebP, GIF or BMP)."),
    N_("This picture file is damaged or incomplete, so we cannot read it. Try saving it again or choose another "
       "picture."),
    N_("The picture is empty: it has no pixels."),
    N_("The picture is blank: nothing in it stands out from the background. Try a picture of one item on a plain "
       "background."),
    N_("The picture is empty: every pixel of it is transparent."),
)
"""The fixed messages of ``fmnist.preprocess.ImageError`` that an upload can get, marked for the catalogues."""
IMAGE_ERROR_TEMPLATES = (
    N_("The file is too big ({size} MB); the limit is {limit} MB."),
    N_("The picture is too large; the limit is {limit} megapixels."),
    N_("The picture is too large ({width}×{height} pixels); the limit is {limit} megapixels."),
)
"""Its messages with numbers in them, as templates: the numbers are read back from the core's English."""


def model_file_bytes(record: runs.RunRecord) -> bytes:
    """The run's model as a ``.keras`` file, written once per run (to a private temp file)."""
    if "model_bytes" not in record.derived:
        handle, path = tempfile.mkstemp(suffix=".keras")
        os.close(handle)
        try:
            record.job.result.model.save(path)
            with open(path, "rb") as stream:
                record.derived["model_bytes"] = stream.read()
        finally:
            os.unlink(path)
    return record.derived["model_bytes"]


def metrics_csv(record: runs.RunRecord) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["epoch", "loss", "accuracy", "val_loss", "val_accuracy", "seconds", "complete"])
    for report in record.job.result.history:
        writer.writerow([report.epoch, report.loss, report.accuracy, report.val_loss, report.val_accuracy,
                         round(report.seconds, 3), report.complete])
    return buffer.getvalue()


def displayable(payload: bytes, prepared: PreparedImage):
    """A small RGB copy of the upload for display; the model's view if the browser could not show it."""
    from PIL import Image, ImageOps

    try:
        with Image.open(io.BytesIO(payload)) as picture:
            picture.draft("RGB", (320, 320))
            shown = ImageOps.exif_transpose(picture).convert("RGB")
            shown.thumbnail((PICTURE_WIDTH, PICTURE_WIDTH))
            return shown
    except Exception:  # noqa: BLE001 - only for display; the prediction already succeeded
        return prepared.preview


def render_answer(top: list[tuple[int, float]]) -> None:
    """The answer: the top class, the top three as bars, and a warning when the model is unsure."""
    label, probability = top[0]
    st.markdown(f"### {common.class_label(label)}")
    common.render_top_predictions(top)
    if common.is_unsure(top):
        st.warning(_("Low confidence ({percent}): the model is not sure. Pictures unlike Fashion-MNIST (busy "
                     "backgrounds, several items, unusual angles) confuse it.").format(
            percent=format_percent(probability, 0)),
                   icon=":material/help:")


def render_pictures(original, prepared: PreparedImage, original_column, seen_column) -> None:
    original_column.image(original, caption=_("Your picture"), width=PICTURE_WIDTH)
    seen_column.image(common.upscale((prepared.array * 255).astype(np.uint8), 6), width=PICTURE_WIDTH,
                      caption=_("What the model sees (28 × 28), inverted") if prepared.inverted
                      else _("What the model sees (28 × 28)"))


def show_prediction(record: runs.RunRecord, prepared: PreparedImage, original) -> None:
    top = evaluation.top_k(explain_panel.predict(record, prepared), 3)
    original_column, seen_column, answer_column = st.columns([1, 1, 2])
    render_pictures(original, prepared, original_column, seen_column)
    with answer_column:
        render_answer(top)
    explain_panel.render_why(record, prepared)


def render_canvas(record: runs.RunRecord) -> None:
    from streamlit_drawable_canvas import st_canvas  # needs the Streamlit runtime: import in page code only

    st.caption(_("Draw one item (a trouser, a bag, a sneaker...) in white on black, filling the square."))
    explain_panel.render_drawing_readiness(record)
    choices.restore("try_brush", 18)
    width = st.session_state["try_brush"]  # the slider sits under the canvas; its value is known already
    if "try_canvas" not in st.session_state:
        # Back from another page: the canvas starts again from the visitor's last drawing.
        st.session_state["try_canvas_initial"] = choices.kept("try_drawing")
    # The answer beside the canvas, the brush under it: on a projector (1280 × 720) drawing and answer
    # fit one screen; on a phone the columns stack and the answer comes right under the canvas.
    canvas_column, answer_column = st.columns(2, gap="medium")
    with canvas_column:
        canvas = st_canvas(stroke_width=width, stroke_color="#FFFFFF", background_color="#000000",
                           height=280, width=280, drawing_mode="freedraw", return_image_data=True,
                           initial_drawing=st.session_state.get("try_canvas_initial"), key="try_canvas")
        choices.keep("try_brush", st.slider(_("Brush size"), 6, 40, key="try_brush"))
    image = canvas.image_data
    if canvas.json_data is not None and canvas.json_data.get("objects") is not None and image is not None:
        choices.keep("try_drawing", canvas.json_data)
        choices.keep("try_drawing_image", image)
    elif image is None:
        image = choices.kept("try_drawing_image")  # the canvas has not sent its picture yet
    prepared = None
    if image is not None:
        with contextlib.suppress(ImageError):  # nothing drawn yet, or only a faint speck
            prepared = prepare_drawing(image)
    if prepared is None:
        answer_column.info(_("Draw on the canvas to get a prediction."))
        return
    with answer_column:
        render_answer(evaluation.top_k(explain_panel.predict(record, prepared), 3))
    render_pictures(image, prepared, *st.columns([1, 1, 2])[:2])
    explain_panel.render_why(record, prepared)


def image_error_text(error: ImageError) -> str:
    """Why a picture cannot be used, in the visitor's language (a message with numbers keeps them, in English)."""
    message = str(error)
    if message in IMAGE_ERROR_MESSAGES:
        return _(message)
    for template in IMAGE_ERROR_TEMPLATES:
        pattern = re.sub(r"\\\{([a-z_]+)\\\}", r"(?P<\1>.+?)", re.escape(template))
        match = re.fullmatch(pattern, message)
        if match:
            return _(template).format(**match.groupdict())
    return server.in_english_only(message, _("This picture cannot be used.") + " " + message)


def render_upload(record: runs.RunRecord) -> None:
    upload = st.file_uploader(_("Upload a picture of one item (PNG, JPEG, WebP, GIF or BMP, up to 5 MB)"),
                              type=UPLOAD_TYPES, key="try_upload")
    if upload is None:
        return
    payload = upload.getvalue()  # stays in memory: uploads are never written to disk
    try:
        prepared = prepare_image(payload)
    except ImageError as error:
        st.error(f"{common.plain_text(common.safe_file_name(upload.name))}: {image_error_text(error)}",
                 icon=":material/broken_image:")
        return
    show_prediction(record, prepared, displayable(payload, prepared))


def render() -> None:
    st.title(_("Try it with your own pictures"))
    record = runs.require_trained_model("try")
    if record is None:
        return
    server.wait_for_tensorflow()
    draw, upload = st.tabs([_("Draw"), _("Upload")])
    with draw:
        render_canvas(record)
    with upload:
        render_upload(record)
    st.divider()
    st.subheader(_("Take it with you"))
    left, right = st.columns(2)
    if baseline.is_baseline(record.job.result.model):  # scikit-learn: no .keras file, its weights as plain arrays
        left.download_button(_("Download the weights (coef_ and intercept_, .npz)"),
                             data=record.job.result.model.weights_file_bytes,
                             file_name=f"{record.file_stem}-weights.npz", mime="application/octet-stream",
                             key="download_weights", icon=":material/download:",
                             help=_("The textbook baseline is a scikit-learn model, so there is no .keras file. "
                                    "numpy.load gives its arrays; its probabilities are expit(pixels @ coef.T + "
                                    "intercept), normalised to sum to 1."))
    else:
        left.download_button(_("Download the model (.keras)"), data=lambda: model_file_bytes(record),
                             file_name=f"{record.file_stem}.keras",
                             mime="application/octet-stream", key="download_model", icon=":material/download:")
    right.download_button(_("Download the run's metrics (CSV)"), data=metrics_csv(record),
                          file_name=f"{record.file_stem}-metrics.csv",
                          mime="text/csv", key="download_metrics", icon=":material/table:")


render()
