"""TrainConfig: validation names the flag, precedence defaults < recipe < file < flags, recipes."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from cnnkit.errors import ConfigError, UnknownNameError
from cnnkit.models import create_model
from cnnkit.train.config import (
    SECTIONS,
    TrainConfig,
    flat_fields,
    flatten_settings,
    resolve_config,
)
from cnnkit.train.recipes import RECIPES


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        ({"lr": 0.0}, "--lr"),
        ({"lr": float("nan")}, "--lr"),
        ({"epochs": 0}, "--epochs"),
        ({"batch_size": 0}, "--batch-size"),
        ({"momentum": 1.0}, "--momentum"),
        ({"optimizer": "adam"}, "--optimizer"),
        ({"schedule": "step"}, "--schedule"),
        ({"label_smoothing": 1.0}, "--label-smoothing"),
        ({"ema": 1.0}, "--ema"),
        ({"warmup": 1.0}, "--warmup"),
        ({"time_budget": -1.0}, "--time-budget"),
        ({"patience": 0}, "--patience"),
        ({"patience": 3, "val_size": 0}, "--patience"),
        ({"epochs": "10"}, "--epochs"),
        ({"flip": 1}, "--flip"),
        ({"mean": [0.1, 0.2], "std": [0.3]}, "--mean"),
        ({"std": [0.0]}, "--std"),
        ({"min_lr": 1.0, "lr": 0.1}, "--min-lr"),
        ({"resized_crop": 1.5}, "--resized-crop"),
        ({"color_jitter": -0.1}, "--color-jitter"),
    ],
)
def test_invalid_values_name_their_flag(changes, flag):
    with pytest.raises(ConfigError) as caught:
        TrainConfig.from_flat(**changes)
    assert str(caught.value).startswith(flag)
    assert "\n" not in str(caught.value)


def test_unknown_setting_suggests_the_closest_field():
    with pytest.raises(ConfigError, match=r"unknown setting 'batchsize'.*'batch_size'"):
        TrainConfig.from_dict({"batchsize": 3})


def test_unknown_recipe_suggests_close_names():
    with pytest.raises(UnknownNameError, match="did you mean: fast"):
        resolve_config("fats")


def test_config_round_trips_through_json():
    config = RECIPES.get("seed003")
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config


_SETTINGS = {
    "epochs": st.integers(1, 99),
    "batch_size": st.integers(1, 999),
    "lr": st.floats(0.001, 1.0),
    "seed": st.integers(0, 10**6),
    "label_smoothing": st.floats(0.0, 0.5),
}


@given(
    recipe=st.sampled_from(["fast", "seed003", "best"]),
    from_file=st.dictionaries(st.sampled_from(sorted(_SETTINGS)), st.integers(1, 3)),
    from_flags=st.dictionaries(st.sampled_from(sorted(_SETTINGS)), st.integers(1, 3)),
    data=st.data(),
)
def test_precedence_defaults_recipe_file_flags(
    tmp_path_factory, recipe, from_file, from_flags, data
):
    draw = lambda keys: {k: data.draw(_SETTINGS[k]) for k in keys}  # noqa: E731
    file_values, flag_values = draw(from_file), draw(from_flags)
    path = tmp_path_factory.mktemp("config") / "c.json"
    path.write_text(json.dumps(file_values))
    config = resolve_config(recipe, path, flag_values)
    base = resolve_config(recipe)  # the recipe after its budget rule (none of these fields)
    for name in flat_fields():
        if name == "budget_changes":  # a record of the rule, not a setting
            continue
        expected = flag_values.get(name, file_values.get(name, base.setting(name)))
        assert config.setting(name) == expected, name


def test_resolving_a_recipe_never_changes_the_registered_one():
    config = resolve_config("seed003")
    config.model.model_kwargs["small_input"] = False
    assert RECIPES.get("seed003").model.model_kwargs == {"small_input": True}


def test_seed003_is_the_seed_recipe():
    # seed 003, section 10: every number of its ResNet-18 recipe
    c = SimpleNamespace(**RECIPES.get("seed003").to_flat())
    assert (c.model, c.model_kwargs) == ("resnet18", {"small_input": True})
    assert (c.optimizer, c.lr, c.momentum, c.nesterov, c.weight_decay) == (
        "sgd",
        0.1,
        0.9,
        True,
        1e-4,
    )
    assert (c.schedule, c.lr_per_epoch, c.schedule_epochs, c.min_lr) == ("cosine", True, 50, 1e-4)
    assert (c.label_smoothing, c.grad_clip, c.batch_size, c.epochs) == (0.1, 1.0, 128, 50)
    assert not c.drop_last  # DataLoader's default: the last batch of 54,000 holds 112 images
    assert (c.flip, c.crop_padding, c.mean, c.std) == (True, 4, [0.2860], [0.3530])
    assert (c.val_size, c.split_seed, c.patience, c.eval_weights) == (6000, 42, 10, "best")
    assert c.warmup == 0.0 and c.ema is None and c.decay_norm_bias


def test_missing_config_file_names_the_flag(tmp_path):
    with pytest.raises(ConfigError, match="--config: file not found"):
        resolve_config(None, tmp_path / "nope.json")


def test_best_grows_its_network_at_each_budget_threshold():
    from cnnkit.train.recipes import (
        DEEP_DEPTH,
        DEEP_ERASING,
        DEEP_FROM_SECONDS,
        ERASING_FROM_SECONDS,
        WIDE_FROM_SECONDS,
        WIDE_WIDTHS,
    )

    assert DEEP_FROM_SECONDS < WIDE_FROM_SECONDS < ERASING_FROM_SECONDS  # the order listed below
    recipe = RECIPES.get("best").model.model_kwargs  # the rule adds to the recipe's own kwargs
    deep = {**recipe, "depth": DEEP_DEPTH}
    wide = {**deep, "widths": WIDE_WIDTHS}
    expected = [  # (budget, network, erasing)
        (1.0, recipe, 0.0),
        (DEEP_FROM_SECONDS - 1e-3, recipe, 0.0),
        (DEEP_FROM_SECONDS, deep, 0.0),
        (WIDE_FROM_SECONDS - 1e-3, deep, 0.0),
        (WIDE_FROM_SECONDS, wide, 0.0),
        (ERASING_FROM_SECONDS - 1e-3, wide, 0.0),
        (ERASING_FROM_SECONDS, wide, DEEP_ERASING),  # the deep net's regulariser on long runs
        (10.0**5, wide, DEEP_ERASING),
    ]
    for budget, kwargs, erasing in expected:
        config = resolve_config("best", overrides={"time_budget": budget})
        assert config.model.model_kwargs == kwargs, budget
        assert config.augmentation.erasing == erasing, budget
        create_model("airnet", **config.model.model_kwargs)  # the rule picks a valid network


def test_best_keeps_the_network_of_a_config_file(tmp_path):
    path = tmp_path / "mine.json"
    path.write_text(json.dumps({"time_budget": 5000, "model_kwargs": {"widths": [16, 32, 64]}}))
    assert resolve_config("best", path).model.model_kwargs == {"widths": [16, 32, 64]}


def test_best_keeps_the_network_a_user_chose():
    from cnnkit.train.recipes import ERASING_FROM_SECONDS, WIDE_WIDTHS

    mine = resolve_config(
        "best", overrides={"time_budget": 10**4, "model_kwargs": {"widths": [8, 8, 8]}}
    )
    assert mine.model.model_kwargs == {"widths": [8, 8, 8]}  # a user's kwargs replace the recipe's
    shallow = resolve_config(
        "best", overrides={"time_budget": ERASING_FROM_SECONDS, "model_kwargs": {"depth": 2}}
    )
    assert shallow.model.model_kwargs == {"depth": 2, "widths": WIDE_WIDTHS}
    assert shallow.augmentation.erasing == 0.0  # no deep net, no erasing
    plain = resolve_config("best", overrides={"time_budget": ERASING_FROM_SECONDS, "erasing": 0.0})
    assert plain.model.model_kwargs["depth"] == 3  # the user's flag stands:
    assert plain.augmentation.erasing == 0.0
    assert plain.budget_changes == {"model_kwargs.widths": WIDE_WIDTHS, "model_kwargs.depth": 3}
    fast = resolve_config("fast", overrides={"time_budget": 10**4})
    assert fast.model.model_kwargs == RECIPES.get("fast").model.model_kwargs
    assert fast.budget_changes == {}


# --- sections ----------------------------------------------------------------------------------

DATA = Path(__file__).parent / "data"


def test_every_setting_lives_in_exactly_one_section():
    per_section = {
        name: [f.name for f in dataclasses.fields(kind)] for name, kind in SECTIONS.items()
    }
    names = [n for fields in per_section.values() for n in fields]
    assert len(names) == len(set(names))  # unique across sections
    mapping = flat_fields()
    for section, fields in per_section.items():
        assert all(mapping[n] == section for n in fields)
    # the one field outside the sections is the budget rule's record
    assert [n for n, s in mapping.items() if s is None] == ["budget_changes"]
    assert set(SECTIONS) == {
        "model", "data", "augmentation", "optimisation", "schedule", "evaluation", "runtime",
        "output", "transfer", "distillation",
    }  # fmt: skip


@pytest.mark.parametrize("stored", ["flat_config_fast.json", "flat_config_best.json"])
def test_a_flat_config_json_of_the_old_trainer_still_loads(stored):
    # fast: written by `cnnkit train` before the sections (/work/baseline16); best: resolved by
    # the flat TrainConfig (tta true + tta_shift 1, the pair that became the TTA level)
    data = json.loads((DATA / stored).read_text())
    config = TrainConfig.from_dict(data)
    for name, value in data.items():
        if name not in ("tta", "tta_shift"):
            assert config.setting(name) == value, name
    assert config.evaluation.tta == (1 + data["tta_shift"] if data["tta"] else 0)
    again = TrainConfig.from_dict(json.loads(json.dumps(config.to_dict())))
    assert again == config  # and what is written now (nested) reads back the same
    assert set(config.to_dict()) == {*SECTIONS, "budget_changes"}


def test_config_file_may_be_flat_or_nested(tmp_path):
    flat, nested = tmp_path / "flat.json", tmp_path / "nested.json"
    flat.write_text(json.dumps({"lr": 0.3, "epochs": 4, "tta": True, "tta_shift": 2}))
    nested.write_text(json.dumps({"schedule": {"lr": 0.3, "epochs": 4}, "evaluation": {"tta": 3}}))
    assert resolve_config(None, flat) == resolve_config(None, nested)
    assert resolve_config(None, nested).evaluation.tta == 3


def test_a_setting_in_the_wrong_section_is_named():
    with pytest.raises(ConfigError, match="'lr' belongs to section 'schedule', not 'data'"):
        TrainConfig.from_dict({"data": {"lr": 0.1}})


def test_sections_built_directly_are_validated_with_the_flag_name():
    from cnnkit.train.config import ScheduleConfig

    with pytest.raises(ConfigError, match=r"^--min-lr: must be in"):
        TrainConfig(schedule=ScheduleConfig(lr=0.1, min_lr=0.5))


@pytest.mark.parametrize(
    ("old", "level"),
    [
        ({"tta": True}, 1),
        ({"tta": False}, 0),
        ({"tta": True, "tta_shift": 1}, 2),
        ({"tta": True, "tta_shift": 3}, 4),
        ({"tta": False, "tta_shift": 1}, 0),  # the shift applied only with the flip on
        ({"tta": 2}, 2),
    ],
)
def test_the_old_tta_pair_becomes_one_level(old, level):
    assert TrainConfig.from_dict(old).evaluation.tta == level


def test_an_old_tta_shift_flag_changes_the_recipes_level():
    assert resolve_config("best").evaluation.tta == 2
    assert resolve_config("best", overrides={"tta_shift": 0}).evaluation.tta == 1
    assert resolve_config("fast", overrides={"tta_shift": 1}).evaluation.tta == 2
    assert resolve_config("lenet5", overrides={"tta_shift": 1}).evaluation.tta == 0


def test_budget_rule_applies_only_to_the_recipes_own_model():
    config = resolve_config("best", overrides={"model": "resnet18", "time_budget": 10.0**4})
    assert config.model.model_kwargs == {} and config.budget_changes == {}
    assert config.augmentation.erasing == 0.0


def test_budget_changes_are_in_config_json_and_the_run_header():
    from cnnkit.train.run_ends import budget_line

    config = resolve_config("best", overrides={"time_budget": 300.0})
    assert config.to_dict()["budget_changes"] == {
        "model_kwargs.widths": [64, 128, 256],
        "model_kwargs.depth": 3,
    }
    assert budget_line(config.budget_changes, 300.0) == (
        "\nbudget rule for 300 s: model_kwargs.widths [64, 128, 256], model_kwargs.depth 3"
    )
    assert budget_line({}, 300.0) == ""
    # a run's recorded config loads back with its record
    assert TrainConfig.from_dict(config.to_dict()) == config


def test_flatten_keeps_flat_keys_and_unfolds_sections():
    nested = TrainConfig.from_flat(lr=0.2).to_dict()
    assert flatten_settings(nested) == TrainConfig.from_flat(lr=0.2).to_flat()
    assert flatten_settings({"lr": 0.2, "other": 1}) == {"lr": 0.2, "other": 1}


def test_a_checkpoints_partial_config_gets_train_configs_defaults():
    # evaluate/predict/robustness rebuild a TrainConfig: a setting a checkpoint lacks takes the
    # same default as training (channels_last on, precision auto), not a reader's own fallback
    from cnnkit.train.config import saved_config

    config = saved_config({"config": {"model": "lenet5", "tta": True}}, "best.pt")
    assert config.runtime.channels_last is True and config.runtime.precision == "auto"
    assert config.evaluation.tta == 1 and config.evaluation.hardest == 16
    with pytest.raises(ConfigError, match=r"best\.pt: unknown setting 'tta_level'"):
        saved_config({"config": {"tta_level": 1}}, "best.pt")
