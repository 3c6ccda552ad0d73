"""Transfer learning (E4): initial weights, frozen stages, BatchNorm, per-group rates, resume.

Oracles: the checkpoint itself (weights copied bit for bit), timm's ``adapt_input_conv`` and the
conv it adapts (the stem), torchvision's own models (stage names), PyTorch's optimiser state
(what it holds), and a resumed run against an uninterrupted one.
"""

from __future__ import annotations

import json

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.nn import functional as F

from cnnkit.data import ImageDataset
from cnnkit.errors import CheckpointError, ConfigError
from cnnkit.train import TrainConfig, fit
from cnnkit.train.transfer import (
    StageRow,
    TransferPlan,
    adapt_input_conv,
    load_initial_weights,
    model_stages,
    plan_transfer,
    read_source,
    resumed_plan,
)
from cnnkit.train.transfer_config import TransferSettings
from tests.model_guard import model_left_as_found
from tests.train.tiny import quadrant_dataset, quiet_config

TRAIN, TEST = quadrant_dataset(128, seed=1), quadrant_dataset(64, seed=2)
AIRNET = dict(model="airnet", model_kwargs={"widths": [8, 8, 8]})


def config(out, **changes) -> TrainConfig:
    base = dict(**AIRNET, val_size=0, batch_size=32, epochs=1, lr=0.05)
    return quiet_config(out, **{**base, **changes})


@pytest.fixture(scope="module")
def pretrained(tmp_path_factory):
    """A trained airnet run (4 classes, 12x12 grey images): the checkpoint to start from."""
    out = tmp_path_factory.mktemp("pre") / "run"
    fit(config(out, epochs=2), train_set=TRAIN, test_set=TEST)
    return out


def renamed(dataset: ImageDataset, classes: list[str]) -> ImageDataset:
    return ImageDataset(dataset.images, dataset.labels, classes, "other", dataset.split)


def three_classes(dataset: ImageDataset) -> ImageDataset:
    keep = dataset.labels < 3
    return ImageDataset(
        dataset.images[keep], dataset.labels[keep], ["a", "b", "c"], "three", dataset.split
    )


def saved(path):
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.parametrize(
    ("mode", "unfreeze", "frozen_stages", "rates"),
    [
        ("features", None, ["whiten", "layer1", "layer2", "layer3"], dict(head_lr=0.1)),
        ("partial", "layer2", ["whiten", "layer1"], dict(head_lr=0.1, backbone_lr=0.02)),
    ],
)
def test_frozen_stages_are_bit_identical_and_hold_no_optimiser_state(
    pretrained, tmp_path, mode, unfreeze, frozen_stages, rates
):
    before = saved(pretrained / "best.pt")["model"]
    data = dict(train_set=renamed(TRAIN, list("wxyz")), test_set=renamed(TEST, list("wxyz")))
    result = fit(
        config(
            tmp_path / "ft",
            init_from=str(pretrained),
            finetune_mode=mode,
            unfreeze_from=unfreeze,
            epochs=2,
            **rates,
        ),
        **data,
    )
    _assert_final_records_the_table(result, tmp_path / "ft", frozen_stages, rates, pretrained)
    last = saved(tmp_path / "ft" / "last.pt")
    after = last["model"]
    frozen = [k for k in after if k.split(".")[0] in frozen_stages]
    trained = [k for k in after if k.split(".")[0] not in frozen_stages and k.split(".")[0] != "fc"]
    assert frozen
    for key in frozen:  # weights and BatchNorm running statistics alike
        assert torch.equal(after[key], before[key]), key
    # the oracle can fail: what trains does move (BN statistics included), and the head is new
    moved = [k for k in trained if not torch.equal(after[k], before[k])]
    assert (not trained) or any("running_mean" in k for k in moved)
    assert not torch.equal(after["fc.weight"], before["fc.weight"])
    # the optimiser holds exactly the trainable parameters, and state only for them
    model = torch.nn.Module()
    from cnnkit.models import create_model

    model = create_model("airnet", widths=(8, 8, 8), num_classes=4, in_channels=1)
    names = [n for n, _ in model.named_parameters()]
    trainable = [
        n
        for n, p in model.named_parameters()
        if p.requires_grad and n.split(".")[0] not in frozen_stages
    ]
    held = sum(len(g["params"]) for g in last["optimizer"]["param_groups"])
    assert held == len(trainable) < len(names)
    assert len(last["optimizer"]["state"]) == held


def _assert_final_records_the_table(result, run, frozen_stages, rates, pretrained):
    """final.json's ``transfer`` entry against a model built here: each stage's parameter
    counts, which stages are frozen, the rates the test asked for, and BatchNorm's mode."""
    from cnnkit.models import create_model

    record = json.loads((run / "final.json").read_text())["transfer"]
    assert record == result.final["transfer"]
    model = create_model("airnet", widths=(8, 8, 8), num_classes=4, in_channels=1)
    stages = [n for n, m in model.named_children() if next(m.parameters(), None) is not None]
    assert [row["stage"] for row in record["rows"]] == stages
    assert record["head"] == "fc" and record["mode"] == result.config.transfer.finetune_mode
    assert record["notes"][0] == f"init from {pretrained / 'best.pt'}"
    assert any("head fc re-initialised for 4 classes" in note for note in record["notes"])
    for row in record["rows"]:
        stage = model.get_submodule(row["stage"])
        frozen = row["stage"] in frozen_stages
        assert row["parameters"] == sum(p.numel() for p in stage.parameters())
        trains = sum(p.numel() for p in stage.parameters() if p.requires_grad)
        assert row["trainable"] == (0 if frozen else trains)
        assert row["frozen"] is frozen
        expected = rates["head_lr"] if row["stage"] == "fc" else rates.get("backbone_lr", 0.05)
        assert row["lr"] == (None if frozen else pytest.approx(expected))
        norms = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in stage.modules())
        assert row["batchnorm"] == ("-" if not norms else "eval" if frozen else "train")
    assert any(row["batchnorm"] == "eval" for row in record["rows"])


def test_a_plain_run_records_no_transfer_table(pretrained):
    """final.json's keys of a run that fine-tunes nothing are those it always had."""
    final = json.loads((pretrained / "final.json").read_text())
    assert "transfer" not in final
    assert "transfer_notes" not in saved(pretrained / "last.pt")


def test_resumed_plan_keeps_the_recorded_notes_and_ignores_anything_else():
    plan = TransferPlan("full", "fc", [StageRow("fc", 10, 10, 0.1, "-")], ["fresh"])
    assert resumed_plan(plan, ["init from a/best.pt"]).notes == ["init from a/best.pt"]
    for hostile in (None, "init from x", [1, 2], {"a": "b"}):
        assert resumed_plan(plan, hostile) == plan
    row = plan.to_dict()["rows"][0]
    assert row == {
        "stage": "fc", "parameters": 10, "trainable": 10, "lr": 0.1, "batchnorm": "-",
        "frozen": False,
    }  # fmt: skip
    assert set(plan.to_dict()) == {"mode", "head", "notes", "rows"}


def record_norm_modes(patch, norm_type: type[nn.Module]) -> dict[int, dict[str, bool]]:
    """Patch the run's set-up so that, at every optimiser step (the after-backward seam), the
    training flag of each ``norm_type`` layer is recorded: step -> {layer name: flag}."""
    from cnnkit.train import loop

    modes: dict[int, dict[str, bool]] = {}

    def spy(model, step, epoch):
        modes[step] = {n: m.training for n, m in model.named_modules() if isinstance(m, norm_type)}

    real = loop._set_up

    def set_up(*args, **kwargs):
        run, training, state = real(*args, **kwargs)
        training.after_backward.append(spy)
        return run, training, state

    patch.setattr(loop, "_set_up", set_up)
    return modes


def test_frozen_batchnorm_stays_in_eval_mode_while_training(pretrained, tmp_path):
    """pytorch #86590: requires_grad=False alone lets running statistics move; ours do not."""
    data = dict(train_set=renamed(TRAIN, list("wxyz")), test_set=renamed(TEST, list("wxyz")))
    with pytest.MonkeyPatch.context() as patch:
        modes = record_norm_modes(patch, nn.BatchNorm2d)
        fit(config(tmp_path / "p", init_from=str(pretrained), unfreeze_from="layer3"), **data)
    assert modes
    for seen in modes.values():
        assert not any(v for n, v in seen.items() if not n.startswith("layer3"))
        assert all(v for n, v in seen.items() if n.startswith("layer3"))
    with pytest.MonkeyPatch.context() as patch:
        modes = record_norm_modes(patch, nn.BatchNorm2d)
        fit(config(tmp_path / "f", init_from=str(pretrained), freeze_bn=True), **data)
    assert modes and not any(v for seen in modes.values() for v in seen.values())


def test_a_resumed_fine_tuning_run_ends_exactly_like_an_uninterrupted_one(pretrained, tmp_path):
    settings_ = dict(
        init_from=str(pretrained),
        unfreeze_from="layer2",
        layer_decay=0.5,
        deterministic=True,
        schedule_epochs=3,  # one schedule for the 2-epoch run that resumes and the 3-epoch one
    )
    data = dict(train_set=renamed(TRAIN, list("wxyz")), test_set=renamed(TEST, list("wxyz")))
    whole = fit(config(tmp_path / "a", epochs=3, **settings_), **data)
    fit(config(tmp_path / "b", epochs=2, **settings_), **data)
    resumed = fit(config(tmp_path / "b", epochs=3, **settings_), resume=tmp_path / "b", **data)
    assert resumed.final["test_loss"] == whole.final["test_loss"]
    # the resumed session cannot reload the initial weights; the checkpoint kept its notes
    assert resumed.final["transfer"] == whole.final["transfer"]
    assert resumed.final["transfer"]["notes"][0] == f"init from {pretrained / 'best.pt'}"
    a, b = saved(tmp_path / "a" / "last.pt"), saved(tmp_path / "b" / "last.pt")
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    before = saved(pretrained / "best.pt")["model"]
    assert torch.equal(b["model"]["layer1.conv1.weight"], before["layer1.conv1.weight"])


def test_per_group_rates_follow_head_backbone_and_layer_decay():
    from cnnkit.models import create_model
    from cnnkit.train.optim import make_optimizer

    model = create_model("airnet", widths=(8, 8, 8), num_classes=4, in_channels=1)
    stages = model_stages(model)
    assert stages == ["whiten", "layer1", "layer2", "layer3", "fc"]
    lr = 0.2
    plan, _ = plan_transfer(
        model, TransferSettings(head_lr=0.5, backbone_lr=0.01), lr=lr, classifier="fc"
    )
    peak = {row.stage: row.lr for row in plan.rows}
    assert peak["fc"] == pytest.approx(0.5) and peak["layer2"] == pytest.approx(0.01)
    decay = 0.7
    model = create_model("airnet", widths=(8, 8, 8), num_classes=4, in_channels=1)
    plan, _ = plan_transfer(model, TransferSettings(layer_decay=decay), lr=lr, classifier="fc")
    cfg = TrainConfig.from_flat(lr=lr, bias_lr_scale=1.0)
    optimizer = make_optimizer(model, cfg.optimisation, lr=lr, lr_scales=plan.lr_scales)
    index = {id(p): n for n, p in model.named_parameters()}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            stage = stages.index(index[id(parameter)].split(".")[0])
            assert group["lr_scale"] == pytest.approx(decay ** (len(stages) - 1 - stage))


def test_new_classes_reinitialise_only_the_head_and_a_grey_stem_sums_rgb():
    """A torchvision ResNet-18 state dict (3 channels, 1000 classes) into cnnkit's resnet18 with
    1 channel and 5 classes: every other tensor is the checkpoint's, bit for bit."""
    from tests.oracles import use_oracle_folder

    use_oracle_folder()
    import torchvision

    from cnnkit.models import create_model
    from cnnkit.train.transfer import Source

    state = torchvision.models.resnet18().state_dict()
    model = create_model("resnet18", num_classes=5, in_channels=1)
    fresh = {k: v.clone() for k, v in model.state_dict().items()}
    notes = load_initial_weights(
        model,
        Source(state, "tv.pth"),
        model_name="resnet18",
        classes=list("abcde"),
        classifier="fc",
        first_conv="conv1",
    )
    got = model.state_dict()
    assert torch.equal(got["fc.weight"], fresh["fc.weight"])
    assert torch.equal(got["conv1.weight"], state["conv1.weight"].sum(1, keepdim=True))
    for key in got:
        if not key.startswith(("fc.", "conv1.")):
            assert torch.equal(got[key], state[key]), key
    assert any("head fc re-initialised for 5 classes" in n for n in notes)
    assert any("stem conv1 adapted from 3 to 1" in n for n in notes)


@pytest.mark.parametrize("channels", [1, 2, 4, 6])
def test_stem_adaptation_matches_timm(channels):
    from tests.oracles import use_oracle_folder

    use_oracle_folder()
    from timm.models._manipulate import adapt_input_conv as timm_adapt

    weight = torch.randn(8, 3, 3, 3)
    assert torch.allclose(adapt_input_conv(weight, channels), timm_adapt(channels, weight))


@settings(max_examples=25, deadline=None)
@given(old=st.integers(1, 4), copies=st.integers(1, 3), seed=st.integers(0, 2**16))
def test_adapted_stem_keeps_the_response_to_a_tiled_input(old, copies, seed):
    """conv(adapted, x tiled k times) == conv(w, x), and conv(summed, g) == conv(w, g repeated)."""
    generator = torch.Generator().manual_seed(seed)
    weight = torch.randn(5, old, 3, 3, generator=generator, dtype=torch.float64)
    x = torch.randn(2, old, 6, 6, generator=generator, dtype=torch.float64)
    tiled = adapt_input_conv(weight, old * copies).double()
    assert torch.allclose(F.conv2d(x.repeat(1, copies, 1, 1), tiled), F.conv2d(x, weight))
    grey = x[:, :1]
    assert torch.allclose(
        F.conv2d(grey, adapt_input_conv(weight, 1).double()),
        F.conv2d(grey.repeat(1, old, 1, 1), weight),
    )


@pytest.mark.slow
def test_stages_are_torchvisions_own_names():
    from tests.oracles import use_oracle_folder

    use_oracle_folder()
    import torchvision

    resnet = model_stages(torchvision.models.resnet18())
    assert resnet == ["conv1", "bn1", "layer1", "layer2", "layer3", "layer4", "fc"]
    mobile = model_stages(torchvision.models.mobilenet_v2())
    assert "features.6" in mobile and mobile[-1] == "classifier.1"
    vgg = model_stages(torchvision.models.vgg11())
    assert vgg[-1] == "classifier.6" and "classifier.2" not in vgg  # ReLU/Dropout own nothing


@pytest.mark.slow
def test_every_zoo_classifier_is_a_stage():
    from cnnkit.models import create_model, model_info

    for name in (
        "lenet5",
        "airnet",
        "resnet18",
        "mobilenet_v2",
        "vgg11",
        "densenet121",
        "efficientnet_b0",
        "convnext_tiny",
        "squeezenet1_0",
        "googlenet",
    ):
        model = create_model(name, num_classes=7)
        assert model_info(name).classifier in model_stages(model), name


def test_unknown_stage_lists_the_valid_ones(pretrained, tmp_path):
    with pytest.raises(ConfigError) as caught:
        fit(
            config(tmp_path / "x", init_from=str(pretrained), unfreeze_from="layer9"),
            train_set=TRAIN,
            test_set=TEST,
        )
    message = str(caught.value)
    assert "\n" not in message
    assert message.endswith("whiten, layer1, layer2, layer3, fc")
    assert not (tmp_path / "x").exists()  # refused before the run folder was made


@pytest.mark.parametrize(
    ("changes", "flag"),
    [
        (dict(finetune_mode="full", unfreeze_from="layer1"), "--unfreeze-from"),
        (dict(layer_decay=0.5, head_lr=0.1), "--layer-decay"),
        (dict(finetune_mode="features", backbone_lr=0.1), "--backbone-lr"),
        (dict(layer_decay=1.5), "--layer-decay"),
        (dict(head_lr=0.0), "--head-lr"),
    ],
)
def test_incompatible_options_are_one_line_naming_the_flag(changes, flag):
    with pytest.raises(ConfigError, match=f"^{flag}"):
        TrainConfig.from_flat(**changes)


def test_a_file_that_is_not_a_checkpoint_is_one_line(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("not a checkpoint")
    with pytest.raises(CheckpointError) as caught:
        read_source(str(path))
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
    with pytest.raises(CheckpointError, match="no such checkpoint"):
        read_source(str(tmp_path / "missing.pt"))


def test_a_checkpoint_of_another_model_is_refused(pretrained, tmp_path):
    with pytest.raises(CheckpointError, match="trained airnet, but the model is lenet5"):
        fit(
            config(
                tmp_path / "x",
                model="lenet5",
                model_kwargs={"input_size": 12},
                init_from=str(pretrained),
            ),
            train_set=TRAIN,
            test_set=TEST,
        )


def test_a_config_file_never_names_code_to_start_from(tmp_path):
    from cnnkit.train.config import resolve_config

    path = tmp_path / "c.json"
    code = "tests.train.tiny:tiny_cnn"
    path.write_text(json.dumps({"init_from": code}))
    with pytest.raises(ConfigError, match="code that cnnkit would import"):
        resolve_config(config_file=path)
    # named by the user, the same code is allowed, and the model it builds is the model
    named = resolve_config(config_file=path, overrides={"init_from": code})
    assert named.transfer.init_from == code and named.model.model == code
    # code that builds no model needs the model named
    with pytest.raises(ConfigError, match=r"^--init-from os:getcwd: returns str, which records no"):
        resolve_config(overrides={"init_from": "os:getcwd"})
    named = resolve_config(overrides={"init_from": "os:getcwd", "model": "lenet5"})
    assert named.model.model == "lenet5"


def test_the_python_api_fine_tunes_the_checkpoints_model_as_the_cli_does(pretrained, tmp_path):
    """resolve_config with init_from and no model: the checkpoint's model and keyword
    arguments (what cnnkit finetune builds); a budget rule leaves them alone."""
    from cnnkit.train.config import resolve_config

    chosen = resolve_config("best", overrides={"init_from": str(pretrained), "time_budget": 1.0})
    assert chosen.model.model == "airnet" and chosen.model.model_kwargs == {"widths": [8, 8, 8]}
    assert chosen.budget_changes == {}
    # a checkpoint whose kwargs leave the widths to airnet's default: the best recipe's rule
    # would add wide widths and a third conv per group for a long budget; it does not apply
    saved_ = saved(pretrained / "best.pt")
    saved_["model_kwargs"] = {"depth": 2}
    narrow = tmp_path / "narrow.pt"
    torch.save(saved_, narrow)
    long = resolve_config("best", overrides={"init_from": str(narrow), "time_budget": 2000.0})
    assert long.model.model_kwargs == {"depth": 2} and long.budget_changes == {}
    assert long.augmentation.erasing == resolve_config("best").augmentation.erasing
    named = resolve_config(overrides={"init_from": str(pretrained), "model": "lenet5"})
    assert named.model.model == "lenet5"


def test_module_callable_named_by_the_user_gives_the_weights(tmp_path):
    source = read_source("tests.train.tiny:tiny_cnn")
    assert set(source.state) == set(nn.Sequential(*list(_tiny())).state_dict())
    data = dict(train_set=renamed(TRAIN, list("wxyz")), test_set=renamed(TEST, list("wxyz")))
    result = fit(
        config(
            tmp_path / "u",
            model="tests.train.tiny:tiny_cnn",
            model_kwargs={},
            init_from="tests.train.tiny:tiny_cnn",
            finetune_mode="features",
        ),
        **data,
    )
    assert result.final["epochs"] == 1


def _tiny():
    from tests.train.tiny import tiny_cnn

    return tiny_cnn()


def test_the_users_module_is_left_as_found(tmp_path):
    from tests.train.tiny import tiny_cnn

    module = tiny_cnn()
    with model_left_as_found(module):
        fit(
            config(tmp_path / "m", model_kwargs={}, finetune_mode="features", freeze_bn=True),
            model=module,
            train_set=TRAIN,
            test_set=TEST,
        )
    with model_left_as_found(module), pytest.raises(ConfigError):
        fit(
            config(tmp_path / "n", model_kwargs={}, unfreeze_from="nope"),
            model=module,
            train_set=TRAIN,
            test_set=TEST,
        )


def test_fewer_classes_reinitialise_the_head_and_train(pretrained, tmp_path):
    result = fit(
        config(tmp_path / "3", init_from=str(pretrained), finetune_mode="features"),
        train_set=three_classes(TRAIN),
        test_set=three_classes(TEST),
    )
    after = saved(tmp_path / "3" / "last.pt")["model"]
    assert after["fc.weight"].shape[0] == 3
    assert result.final["epochs"] == 1


def test_fine_tuning_normalises_like_the_checkpoint_unless_told(pretrained, tmp_path):
    source = saved(pretrained / "best.pt")
    other = ImageDataset(TRAIN.images // 2, TRAIN.labels, list("wxyz"), "dim", "train")
    test = ImageDataset(TEST.images // 2, TEST.labels, list("wxyz"), "dim", "test")
    result = fit(config(tmp_path / "n", init_from=str(pretrained)), train_set=other, test_set=test)
    assert result.config.data.mean == source["mean"] and result.config.data.std == source["std"]
    given_ = fit(
        config(tmp_path / "g", init_from=str(pretrained), mean=[0.2], std=[0.3]),
        train_set=other,
        test_set=test,
    )
    assert given_.config.data.mean == [0.2] and given_.config.data.std == [0.3]
    plain = fit(config(tmp_path / "p"), train_set=other, test_set=test)  # computed: darker
    assert plain.config.data.mean[0] < source["mean"][0]


def test_frozen_batchnorm_stays_in_eval_mode_when_sync_bn_replaces_the_layers(
    pretrained, tmp_path, monkeypatch
):
    """--sync-bn (CUDA, several processes) swaps every BatchNorm for a new SyncBatchNorm
    after the stages are frozen: the new layers of a frozen stage stay in eval mode, and their
    running statistics end the run as the checkpoint's. Here the swap runs in one process."""
    from cnnkit.train import distributed

    def convert(self, model):
        return nn.SyncBatchNorm.convert_sync_batchnorm(model)

    monkeypatch.setattr(distributed.Distributed, "prepare", convert)
    modes = record_norm_modes(monkeypatch, nn.SyncBatchNorm)
    data = dict(train_set=renamed(TRAIN, list("wxyz")), test_set=renamed(TEST, list("wxyz")))
    fit(config(tmp_path / "s", init_from=str(pretrained), unfreeze_from="layer3"), **data)
    assert modes and all(seen for seen in modes.values())
    for seen in modes.values():
        assert not any(v for n, v in seen.items() if not n.startswith("layer3"))
        assert all(v for n, v in seen.items() if n.startswith("layer3"))
    before = saved(pretrained / "best.pt")["model"]
    after = saved(tmp_path / "s" / "last.pt")["model"]
    assert torch.equal(after["layer1.bn1.running_mean"], before["layer1.bn1.running_mean"])


@pytest.mark.slow
@pytest.mark.parametrize("recipe", ["fast", "best"])
def test_recipes_fine_tune_under_a_time_budget(tmp_path, recipe):
    """A recipe's own model, whitening, freeze schedule, augmentation, TTA and schedule, fine-
    tuned in features mode under a time budget: it stops on the budget, and every frozen tensor
    (BatchNorm statistics included) ends as the checkpoint's."""
    from cnnkit.train import resolve_config

    base = {
        "val_size": 0, "mean": None, "std": None, "device": "cpu", "threads": 1,
        "progress": False, "tensorboard": False, "plots": False,
    }  # fmt: skip
    data = dict(train_set=quadrant_dataset(96, 1, 28), test_set=quadrant_dataset(32, 2, 28))
    pre = resolve_config(recipe, overrides={**base, "epochs": 1, "out_dir": str(tmp_path / "p")})
    fit(pre, **data)
    changes = {"epochs": 1000, "time_budget": 1.0, "finetune_mode": "features"}
    changes |= {"init_from": str(tmp_path / "p"), "out_dir": str(tmp_path / "f")}
    new = dict(train_set=renamed(data["train_set"], list("wxyz")))
    new["test_set"] = renamed(data["test_set"], list("wxyz"))
    result = fit(resolve_config(recipe, overrides={**base, **changes}), **new)
    assert result.final["stopped"] == "time_budget" and result.history[-1]["steps"] > 1
    before = saved(tmp_path / "p" / "best.pt")["model"]
    after = saved(tmp_path / "f" / "last.pt")["model"]
    head = [k for k in after if k.startswith("fc.")]
    assert head and not torch.equal(after[head[0]], before[head[0]])
    for key in after:
        if key not in head:
            assert torch.equal(after[key], before[key]), key


def test_frozen_batchnorm_statistics_are_not_averaged_across_three_processes(monkeypatch):
    """At each epoch's end the ranks average their BatchNorm statistics (sum, then divide by
    the world size). A frozen stage's statistics are equal on every rank, but a sum over 3
    ranks divided by 3 changes the last bit of many values: they are left alone."""
    import torch.distributed as dist

    from cnnkit.models import create_model
    from cnnkit.train.distributed import Distributed
    from cnnkit.train.transfer import frozen_buffer_names

    model = create_model("airnet", widths=(8, 8, 8), num_classes=4, in_channels=1)
    generator = torch.Generator().manual_seed(0)
    for buffer in model.buffers():
        if buffer.dtype.is_floating_point:
            buffer.copy_(torch.rand(buffer.shape, generator=generator))
    _, keep_eval = plan_transfer(
        model, TransferSettings(mode="partial", unfreeze_from="layer3"), lr=0.1, classifier="fc"
    )
    before = {k: v.clone() for k, v in model.state_dict().items()}

    def three_equal_ranks(tensor, op=None):  # what SUM over 3 ranks holding ``tensor`` gives
        tensor.mul_(3)

    monkeypatch.setattr(dist, "all_reduce", three_equal_ranks)
    three = Distributed(rank=0, world_size=3, backend="gloo")
    frozen = frozen_buffer_names(model, keep_eval)
    assert "layer1.bn1.running_mean" in frozen and not any(k.startswith("layer3") for k in frozen)
    three.average_buffers(model, keep=frozen)
    after = model.state_dict()
    for key in frozen:
        assert torch.equal(after[key], before[key]), key
    # the oracle can fail: the statistics that train are averaged, and some last bits move
    averaged = [k for k in after if k.startswith("layer3") and "running" in k]
    assert averaged and any(not torch.equal(after[k], before[k]) for k in averaged)
