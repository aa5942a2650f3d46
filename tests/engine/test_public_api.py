"""engine/__init__.py is what api/ and the CLI may import; this pins it so changes are deliberate."""
import engine

EXPECTED = {
    "ActResult", "Conflict", "Database", "DefinitionInvalid", "EngineError", "FieldProblem", "Forbidden",
    "InstanceView", "InvalidInput", "NotFound", "ProcessError", "Settings", "TaskView", "VerifyResult",
    "WorkflowEngine", "get_settings", "health",
}


def test_public_api_is_pinned():
    assert set(engine.__all__) == EXPECTED
    for name in EXPECTED:
        assert hasattr(engine, name), name


def test_api_package_imports_no_spiffworkflow_or_sessions():
    import pathlib

    for path in pathlib.Path(engine.__file__).parent.parent.joinpath("api").rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        assert "SpiffWorkflow" not in text and "sqlalchemy" not in text, path
