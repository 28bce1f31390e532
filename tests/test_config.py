import pytest

from model_code.config import PRESETS, ConfigError, ModelConfig, load_preset


@pytest.mark.parametrize("name", PRESETS)
def test_presets_load_and_round_trip(name, tmp_path):
    config = load_preset(name)
    assert config.name == name
    config.save(tmp_path / "config.json")
    assert ModelConfig.load(tmp_path / "config.json") == config


def test_mini_has_the_documented_sizes():
    config = load_preset("mini")
    assert config.matryoshka_dims == (64, 128, 256, 384)
    assert config.embed_dim == 384


def test_unknown_preset_and_keys_are_named():
    with pytest.raises(ConfigError, match="unknown preset 'huge'"):
        load_preset("huge")
    data = load_preset("tiny").to_dict()
    data["vision"]["pixels"] = 3
    with pytest.raises(ConfigError, match="unknown key 'vision.pixels'"):
        ModelConfig.from_dict(data)


def test_every_setting_must_have_its_declared_type():
    data = load_preset("tiny").to_dict()
    data["vision"]["image_size"] = "224"
    data["fuser"]["max_text_tokens"] = 12.5
    data["matryoshka_dims"] = [16, "32"]
    with pytest.raises(ConfigError) as caught:
        ModelConfig.from_dict(data)
    message = str(caught.value)
    assert "vision.image_size: input should be a valid integer, got '224'" in message
    assert "fuser.max_text_tokens: input should be a valid integer, got 12.5" in message
    assert "matryoshka_dims.1: input should be a valid integer, got '32'" in message
    del data["fuser"]["kind"]
    with pytest.raises(ConfigError, match="fuser.kind: field required"):
        ModelConfig.from_dict(data)


def test_check_dim_accepts_only_matryoshka_sizes():
    config = load_preset("tiny")
    assert config.check_dim(None) == 64
    assert config.check_dim(32) == 32
    with pytest.raises(ConfigError, match="dimension 48 is not a Matryoshka size"):
        config.check_dim(48)


def test_matryoshka_dims_must_ascend():
    data = load_preset("tiny").to_dict()
    data["matryoshka_dims"] = [32, 16]
    with pytest.raises(ConfigError, match="ascending"):
        ModelConfig.from_dict(data)


def test_fuser_pooling_is_checked_and_saved_models_without_it_keep_mean_tanh():
    data = load_preset("tiny").to_dict()
    data["fuser"]["pooling"] = "max"
    with pytest.raises(ConfigError, match="unknown fuser pooling 'max'"):
        ModelConfig.from_dict(data)
    del data["fuser"]["pooling"], data["fuser"]["instruction_prefix"]  # saved before the keys
    fuser = ModelConfig.from_dict(data).fuser
    assert (fuser.pooling, fuser.instruction_prefix) == ("mean_tanh", True)
    assert (load_preset("mini").fuser.pooling, load_preset("mini").fuser.instruction_prefix) == (
        "mean",
        False,
    )
