"""fmnist-studio: train a Keras network on Fashion-MNIST live in the browser, and test it.

The entry script only sets up the page, the navigation and a small sidebar status that
follows the visitor's latest training run on every page. Each page lives in ``views/``.
"""

import streamlit as st

from views import language, runs, server, status
from views.language import _

st.set_page_config(page_title="fmnist-studio", page_icon=":material/checkroom:", layout="wide")
server.keep_keras_state_between_reruns()
server.log_fmnist_notes()

pages = [
    st.Page("views/explore.py", title=_("Explore"), icon=":material/grid_view:", default=True),
    st.Page("views/train.py", title=_("Train"), icon=":material/model_training:"),
    st.Page("views/evaluate.py", title=_("Evaluate"), icon=":material/analytics:"),
    st.Page("views/try_it.py", title=_("Try it"), icon=":material/draw:"),
    st.Page("views/inside.py", title=_("Look inside"), icon=":material/visibility:"),
    st.Page("views/game.py", title=_("Human vs model"), icon=":material/sports_esports:"),
]
page = st.navigation(pages)


@st.fragment(run_every=2)
def sidebar_training_status() -> None:
    """Keeps this visitor's job alive (heartbeat, for AppTest) and shows the latest run's state on every page."""
    snapshot = runs.heartbeat_active_jobs()
    if snapshot is not None:
        st.caption(_("Run {number}: {status}").format(number=runs.session_runs()[-1].run_id,
                                                      status=status.status_text(snapshot)))
        st.progress(status.progress_fraction(snapshot))


with st.sidebar:
    language.language_selector()
    st.caption(_("Fashion-MNIST, trained live with Keras."))
    sidebar_training_status()
runs.warn_before_leaving()

try:
    page.run()
finally:
    # TensorFlow's import (about 6 s, most of it holding the GIL) starts in the background once the
    # first page is drawn, not before: started first, it made that page take twice as long.
    server.tensorflow_warmup()
