""".env.example lists every setting at its default and cannot drift from Settings."""

from __future__ import annotations

from pathlib import Path

from telephony.config import Settings, env_example, env_name

ROOT = Path(__file__).resolve().parent.parent
REGENERATE = "python -m telephony.config > .env.example"


def test_env_example_is_generated_from_the_settings():
    assert (ROOT / ".env.example").read_text() == env_example(), f"regenerate it: {REGENERATE}"


def test_env_example_names_every_setting_once():
    text = (ROOT / ".env.example").read_text()
    named = [line[2:].split("=", 1)[0] for line in text.splitlines() if line.startswith("# ") and "=" in line]
    names = [n for n in named if n.isupper()]
    assert sorted(names) == sorted(env_name(f) for f in Settings.model_fields)
    assert {"OPENAI_API_KEY", "PUBLIC_URL", "TELEPHONY_RECORD_DTMF", "TELEPHONY_WORKERS"} <= set(names)


def test_its_defaults_are_the_settings_defaults(tmp_path):
    """Uncommented as it stands, the file changes nothing (values with no default stay out)."""
    lines = [
        line[2:]
        for line in (ROOT / ".env.example").read_text().splitlines()
        if line.startswith("# ") and "=" in line and line[2:].split("=", 1)[0].isupper() and not line.endswith("=")
    ]
    env = tmp_path / ".env"
    env.write_text("\n".join(lines) + "\n")
    assert len(lines) > 50
    assert Settings(_env_file=env).model_dump() == Settings(_env_file=None).model_dump()
