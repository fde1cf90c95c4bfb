import pytest

from assistant.config import Settings, settings_table

from .conftest import REPO


def test_settings_doc_table_matches_the_code():
    doc = (REPO / "docs" / "settings.md").read_text(encoding="utf-8")
    assert settings_table() in doc, (
        "docs/settings.md's table is stale: paste `assistant settings --table` into it"
    )


def test_every_field_is_documented():
    for name, field in Settings.model_fields.items():
        assert field.description, name


def test_env_prefix_and_validation(monkeypatch):
    monkeypatch.setenv("ASSISTANT_CHUNK_TOKENS", "150")
    monkeypatch.setenv("ASSISTANT_SEEDS_DIR", "/tmp/x")
    s = Settings()
    assert s.chunk_tokens == 150 and str(s.seeds_dir) == "/tmp/x"
    monkeypatch.setenv("ASSISTANT_CHUNK_OVERLAP", "100")
    with pytest.raises(ValueError, match="ASSISTANT_CHUNK_OVERLAP"):
        Settings()


@pytest.mark.parametrize(
    ("env", "value", "named"),
    [
        ("ASSISTANT_CHUNK_TOKENS", "5", "ASSISTANT_CHUNK_TOKENS ('5'): input should be greater"),
        ("ASSISTANT_CHUNK_TOKENS", "many", "ASSISTANT_CHUNK_TOKENS ('many'): input should be"),
        ("ASSISTANT_ABSTAIN_THRESHOLD", "nan", "ASSISTANT_ABSTAIN_THRESHOLD ('nan'):"),
        ("ASSISTANT_ABSTAIN_THRESHOLD", "1.5", "ASSISTANT_ABSTAIN_THRESHOLD ('1.5'):"),
        ("ASSISTANT_LLM_TIMEOUT", "inf", "ASSISTANT_LLM_TIMEOUT ('inf'):"),
        ("ASSISTANT_MAX_K", "0", "ASSISTANT_MAX_K ('0'):"),
    ],
)
def test_a_bad_setting_names_its_environment_variable(monkeypatch, env, value, named):
    from assistant.errors import ConfigError

    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as err:
        Settings()
    message = str(err.value)
    assert message.startswith("invalid settings: ") and named in message
    assert env.removeprefix("ASSISTANT_").lower() not in message  # not pydantic's field name
    assert "\n" not in message and "pydantic" not in message


def test_ci_runs_the_readme_test_command():
    import re

    readme = (REPO / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```bash\n(.*?)\n```", readme, re.S)
    test_command = next(b for b in blocks if "pytest" in b and "venv" in b)
    assert test_command in (REPO / ".ci" / "run").read_text(encoding="utf-8")
