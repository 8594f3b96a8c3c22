"""What the app exposes: server settings, uploads that never touch the disk, sessions that never mix."""

import ast
import os
import tempfile
import tomllib
import uuid
from pathlib import Path

from apptest_support import REPO_ROOT, quick_train, session_runs, trouser_png, wait_for_runs_to_end

from views import common, server

VIEWS = REPO_ROOT / "views"
TRAIN, EVALUATE, TRY_IT = "views/train.py", "views/evaluate.py", "views/try_it.py"
FILE_SYSTEM_CALLS = {
    "open", "Path", "PurePath", "write", "write_bytes", "write_text", "writelines", "save", "savez", "tofile",
    "to_csv", "mkstemp", "NamedTemporaryFile", "mkdir", "makedirs", "copy", "copyfile", "move", "rename", "replace",
}
MESSAGE_CALLS = {"error", "warning", "info", "caption", "markdown", "write", "toast"}


def server_config() -> dict:
    with open(REPO_ROOT / ".streamlit" / "config.toml", "rb") as stream:
        return tomllib.load(stream)


def test_config_hides_tracebacks_keeps_xsrf_limits_uploads_and_sends_no_statistics():
    config = server_config()

    assert config["client"]["showErrorDetails"] == "none"
    assert config.get("server", {}).get("enableXsrfProtection", True) is True
    assert config["server"]["maxUploadSize"] == 25  # the app says why above 5 MB; Streamlit refuses above 25
    assert config["browser"]["gatherUsageStats"] is False
    assert config["theme"].get("base") or config["theme"].get("primaryColor")


# ----------------------------------------------------------------------------- uploads stay in memory

def call_name(call: ast.Call) -> str:
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")


def parents_of(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def upload_variables(function: ast.AST) -> set[str]:
    """Names bound to the value of ``st.file_uploader(...)`` in ``function``."""
    return {target.id for node in ast.walk(function) if isinstance(node, ast.Assign)
            and isinstance(node.value, ast.Call) and call_name(node.value) == "file_uploader"
            for target in node.targets if isinstance(target, ast.Name)}


def view_trees() -> dict[str, ast.Module]:
    return {path.name: ast.parse(path.read_text(), filename=str(path)) for path in sorted(VIEWS.glob("*.py"))}


def test_no_page_hands_a_file_name_to_a_file_system_call():
    for name, tree in view_trees().items():
        for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call)):
            if call_name(call) not in FILE_SYSTEM_CALLS:
                continue
            for argument in [*call.args, *(keyword.value for keyword in call.keywords)]:
                names = [node for node in ast.walk(argument) if isinstance(node, ast.Attribute) and node.attr == "name"]
                assert not names, f"views/{name}:{call.lineno} passes a .name to {call_name(call)}()"


def test_an_upload_is_only_read_in_memory_and_its_name_only_shown_in_messages():
    trees = view_trees()
    functions = {name: [node for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)]
                 for name, tree in trees.items()}
    assert {function.name for function in functions["try_it.py"] if upload_variables(function)} == {"render_upload"}
    for name, tree in trees.items():
        parents = parents_of(tree)
        for function in functions[name]:
            variables = upload_variables(function)
            for node in ast.walk(function):
                if not (isinstance(node, ast.Name) and node.id in variables and isinstance(node.ctx, ast.Load)):
                    continue
                parent = parents[node]
                where = f"views/{name}:{node.lineno}"
                if isinstance(parent, ast.Compare):
                    assert [type(op) for op in parent.ops] in ([ast.Is], [ast.IsNot]), where
                elif isinstance(parent, ast.Attribute) and parent.attr == "getvalue":
                    assert isinstance(parents[parent], ast.Call), where
                elif isinstance(parent, ast.Attribute) and parent.attr == "name":
                    enclosing = parents[parent]
                    while not isinstance(enclosing, (ast.Call, ast.stmt)) or (
                            isinstance(enclosing, ast.Call) and call_name(enclosing) in ("safe_file_name", "plain_text")):
                        enclosing = parents[enclosing]  # the display-only sanitiser, inside a message
                    assert isinstance(enclosing, ast.Call) and call_name(enclosing) in MESSAGE_CALLS, (
                        f"{where}: the upload's name is used outside a message")
                else:
                    raise AssertionError(f"{where}: the upload is used in a way this check does not know")


def test_try_it_passes_the_uploaded_bytes_to_prepare_image():
    tree = view_trees()["try_it.py"]
    render_upload = next(node for node in ast.walk(tree)
                         if isinstance(node, ast.FunctionDef) and node.name == "render_upload")
    from_upload = {target.id for node in ast.walk(render_upload) if isinstance(node, ast.Assign)
                   and ast.unparse(node.value) == "upload.getvalue()"
                   for target in node.targets if isinstance(target, ast.Name)}
    arguments = [ast.unparse(call.args[0]) for call in ast.walk(render_upload)
                 if isinstance(call, ast.Call) and call_name(call) == "prepare_image"]
    assert arguments, "render_upload no longer calls prepare_image"
    assert all(argument == "upload.getvalue()" or argument in from_upload for argument in arguments), arguments


def paths_containing(token: str) -> list[str]:
    """Every file or folder under the temp folders and the repository whose name holds ``token``."""
    roots = {Path("/tmp"), Path(tempfile.gettempdir()), REPO_ROOT, Path.cwd()}
    found = []
    for root in roots:
        for folder, subfolders, files in os.walk(root):
            subfolders[:] = [sub for sub in subfolders if sub not in (".venv", ".git", "node_modules")]
            found.extend(os.path.join(folder, entry) for entry in (*subfolders, *files) if token in entry)
    return found


def test_an_upload_with_a_path_in_its_name_is_never_written_to_disk(new_session):
    token = uuid.uuid4().hex
    evil_name = f"evil-{token}-../../probe-{token}.png"
    at = new_session(TRY_IT)
    quick_train(at, "try")

    at.file_uploader(key="try_upload").set_value((evil_name, trouser_png(), "image/png")).run()
    assert not at.exception and not at.error
    assert [markdown.value for markdown in at.markdown if markdown.value.startswith("### ")]  # it was predicted
    at.file_uploader(key="try_upload").set_value((evil_name, b"not a picture", "image/png")).run()
    assert not at.exception
    assert [error.value for error in at.error][0].startswith(common.plain_text(common.safe_file_name(evil_name)))  # shown as plain text

    assert paths_containing(token) == []
    for base in (Path.cwd(), REPO_ROOT, Path("/tmp")):
        assert not os.path.lexists(base / evil_name)
        assert not (base.parent.parent / f"probe-{token}.png").exists()


# ----------------------------------------------------------------------------- sessions

def test_a_visitors_runs_and_model_are_invisible_to_another_visitor(new_session):
    visitor = new_session(TRAIN)
    visitor.number_input(key="train_epochs").set_value(1)
    visitor.button(key="train_start").click().run()
    wait_for_runs_to_end(visitor)
    [visitors_run] = session_runs(visitor)
    assert visitors_run.has_model

    other = new_session(EVALUATE)
    assert not other.exception
    assert any(info.value.startswith("There is no trained model yet to evaluate.") for info in other.info)
    assert not other.metric
    assert session_runs(other) == []
    other.switch_page(TRY_IT).run()
    assert any(info.value.startswith("There is no trained model yet to try.") for info in other.info)
    assert not other.file_uploader and not other.get("download_button")
    other.switch_page(TRAIN).run()
    assert not other.dataframe  # no run history

    visitor.switch_page(EVALUATE).run()
    assert not visitor.exception
    assert {metric.label for metric in visitor.metric} >= {"Validation accuracy", "Test accuracy"}


def test_the_job_manager_is_shared_but_runs_belong_to_their_session(new_session):
    visitor = new_session(EVALUATE)
    quick_train(visitor, "evaluate")
    other = new_session(TRY_IT)
    quick_train(other, "try")

    [visitors_run], [others_run] = session_runs(visitor), session_runs(other)
    assert visitors_run.job is not others_run.job
    # One queue for the whole server (the private attribute is the only way to see which manager a job uses).
    assert visitors_run.job._manager is others_run.job._manager is server.job_manager()
    visitor.run()
    assert visitor.selectbox(key="evaluate_run").options == [visitors_run.label]
    other.run()
    assert other.selectbox(key="try_run").options == [others_run.label]


# ----------------------------------------------------------------------------- the first page comes first

def test_the_first_page_is_drawn_before_tensorflow_starts_loading(new_session, monkeypatch):
    """TensorFlow's background import holds the GIL for seconds: begun before the first page, it made
    that page twice as slow (3.7-3.9 s against 1.6-1.9 s to the first page in chromium, bench ``browser``)."""
    order: list[str] = []
    load_dataset = server.load_dataset_or_stop

    def page_loads_its_data():
        order.append("page")
        return load_dataset()

    class RecordedWarmup(server.TensorFlowWarmup):
        def __init__(self, *args, **kwargs):
            order.append("warm-up")
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(server, "load_dataset_or_stop", page_loads_its_data)
    monkeypatch.setattr(server, "TensorFlowWarmup", RecordedWarmup)
    at = new_session()  # Explore, the default page

    assert not at.exception
    assert [title.value for title in at.title] == ["Explore Fashion-MNIST"]
    assert order[:2] == ["page", "warm-up"]
    assert server.tensorflow_warmup().ready.wait(120)  # and it did start: pages that train wait on it
