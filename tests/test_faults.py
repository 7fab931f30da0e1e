"""Bad input and faults (issue 15, issue 10 items 4, 7, 8): each test reproduces one report.

CLI tests call ``nafrl.cli.main`` in-process where they can (a user error must end in one
line on stderr and exit status 2); the ones that need a missing GL library, a read-only or a
full disk run ``nafrl`` in a private mount namespace (``unshare``).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import jax
import numpy as np
import pytest

import nafrl
from nafrl import runtime
from nafrl.checkpoint import load_checkpoint
from nafrl.cli import main
from nafrl.config import ALGO_ONLY, Config, identity_dict, make_config, validate_for_algo
from nafrl.envs import TASKS
from nafrl.errors import (
    CheckpointError,
    ConfigError,
    EnvError,
    NafrlError,
    RunFolderError,
    StorageError,
    TrainingDivergedError,
)
from nafrl.logger import EPISODE_FIELDS, RunLogger

TINY = {
    "hidden_sizes": (8, 8),
    "batch_size": 8,
    "learning_starts": 50,
    "updates_per_step": 1,
    "eval_interval": 0,
    "eval_episodes": 1,
    "buffer_size": 1000,
}
TINY_FLAGS = [
    "--hidden-sizes", "8", "8", "--batch-size", "8", "--learning-starts", "50",
    "--updates-per-step", "1", "--eval-interval", "0", "--eval-episodes", "1",
]  # fmt: skip
CARTPOLE = next(k for k in TASKS if k.startswith("nafrl/Cartpole"))


def _cli(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    """Run ``nafrl ARGS`` in-process; (exit status, stderr)."""
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as e:
        code = int(e.code or 0)
    return code, capsys.readouterr().err


def _user_error(capsys: pytest.CaptureFixture, *args: str) -> str:
    """Assert ``nafrl ARGS`` fails as a user error: exit 2, one line on stderr; return it."""
    code, err = _cli(capsys, *args)
    lines = err.strip().splitlines()
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("nafrl: error: "), err
    return lines[0]


def _unshare() -> list[str]:
    """A command prefix for a private mount namespace (as root, or in a user namespace)."""
    for cmd in (["unshare", "-m"], ["unshare", "-rm"]):
        if subprocess.run([*cmd, "true"], capture_output=True).returncode == 0:
            return cmd
    raise AssertionError("these fault tests need `unshare` (util-linux) with mount namespaces")


def _nafrl_script() -> str:
    return f"{sys.executable} -m nafrl.cli"


def _in_namespace(script: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "PYOPENGL_PLATFORM")}
    env["DISPLAY"] = ""
    return subprocess.run(
        [*_unshare(), "sh", "-ec", script],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=600,
    )


@pytest.fixture(scope="module")
def pendulum_ckpt(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small trained NAF checkpoint on Pendulum-v1 (300 steps, 1.5 episodes)."""
    path = tmp_path_factory.mktemp("ck") / "checkpoint.npz"
    m = nafrl.NAF("Pendulum-v1", seed=0, **TINY)
    m.learn(300)
    m.save(path)
    return path


def _tamper(src: Path, dst: Path, edit) -> Path:
    """Copy a checkpoint with ``edit(arrays, meta)`` applied to its raw arrays and header."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays.pop("__meta__").tobytes().decode())
    meta = edit(arrays, meta) or meta
    header = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    with open(dst, "wb") as f:
        np.savez(f, __meta__=header, **arrays)
    return dst


# ------------------------------------------------------------------ 0: no GL library
def test_0_training_needs_no_gl_library_and_render_names_the_package(tmp_path):
    # The files the dynamic linker would load (ldconfig's cache), resolved through symlinks.
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True).stdout
    libs = sorted(
        {
            os.path.realpath(line.split(" => ")[-1].strip())
            for line in cache.splitlines()
            if " => " in line and line.strip().startswith(("libOSMesa", "libEGL"))
        }
    )
    hide = "".join(f"mount --bind /dev/null {p}\n" for p in libs)
    nafrl_cmd, flags = _nafrl_script(), " ".join(TINY_FLAGS)
    # A MUJOCO_GL=osmesa left over from old instructions must not break training either.
    learn = f"import nafrl; nafrl.NAF('{CARTPOLE}', hidden_sizes=(8,), learning_starts=5).learn(20)"
    script = f"""{hide}
{nafrl_cmd} train --env {CARTPOLE} --steps 120 --run-dir run --no-progress-bar {flags}
MUJOCO_GL=osmesa {sys.executable} -c "{learn}"
set +e
{nafrl_cmd} render {CARTPOLE} --out pic.png 2> render.err
echo $? > render.rc
MUJOCO_GL=osmesa {nafrl_cmd} render {CARTPOLE} --out pic.png 2> render2.err
echo $? > render2.rc
"""
    r = _in_namespace(script, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert (tmp_path / "run" / "checkpoint.npz").is_file()
    for name in ("render", "render2"):
        assert (tmp_path / f"{name}.rc").read_text().strip() == "2"
        err = (tmp_path / f"{name}.err").read_text().strip().splitlines()
        assert len(err) == 1 and "libosmesa6" in err[0], err
    assert not (tmp_path / "pic.png").exists()


def test_0_render_backend_is_chosen_only_when_rendering(tmp_path):
    code = (
        "import os, nafrl; assert 'MUJOCO_GL' not in os.environ, os.environ['MUJOCO_GL'];"
        "m = nafrl.NAF('Pendulum-v1', hidden_sizes=(8,)); assert 'MUJOCO_GL' not in os.environ"
    )
    env = {k: v for k, v in os.environ.items() if k != "MUJOCO_GL"}
    env["DISPLAY"] = ""
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


# ------------------------------------------------------------------ 1: never a NaN checkpoint
def test_1_non_finite_parameters_are_never_checkpointed(tmp_path):
    m = nafrl.NAF("Pendulum-v1", seed=0, **TINY)
    good = m.save(tmp_path / "checkpoint.npz")
    before = good.read_bytes()
    m.state = jax.tree.map(
        lambda x: x * np.float32(np.nan) if np.asarray(x).dtype.kind == "f" else x, m.state
    )
    with pytest.raises(TrainingDivergedError, match="non-finite"):
        m.save(good)
    assert good.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoint.npz"]  # no temporary left


def test_1_diverging_run_dies_as_divergence_not_as_an_env_error(tmp_path, capsys):
    line = _user_error(
        capsys,
        "train", "--env", "Pendulum-v1", "--learning-rate", "1e30", "--checkpoint-interval",
        "1", "--steps", "1000", "--run-dir", str(tmp_path / "run"), "--no-progress-bar",
        *TINY_FLAGS,
    )  # fmt: skip
    assert "non-finite" in line and "NaN or inf" not in line.split("non-finite")[0]
    ck = tmp_path / "run" / "checkpoint.npz"
    if ck.exists():  # the last good one, if an episode finished before the divergence
        arrays, _ = load_checkpoint(ck)
        assert all(np.all(np.isfinite(a)) for a in arrays.values() if a.dtype.kind == "f")


# ------------------------------------------------------------------ 2: NaN from the env
class _BadAt(gym.Wrapper):
    def __init__(self, env, at, field):
        super().__init__(env)
        self.at, self.field, self.t = at, field, 0

    def step(self, action):
        obs, r, term, trunc, info = self.env.step(action)
        self.t += 1
        if self.t == self.at:
            if self.field == "reward":
                r = float("nan")
            else:
                obs = np.full_like(obs, np.inf)
        return obs, r, term, trunc, info


@pytest.mark.parametrize("field", ["reward", "observation"])
def test_2_non_finite_env_output_is_refused_at_the_step(field):
    m = nafrl.NAF(_BadAt(gym.make("Pendulum-v1"), 30, field), seed=0, **TINY)
    with pytest.raises(EnvError, match=rf"Pendulum-v1 .*non-finite {field} at step 30 "):
        m.learn(100)  # before learning_starts: nothing but the env can be blamed
    assert len(m.buffer) == 29
    assert np.all(np.isfinite(m.buffer.data["reward"])) and np.all(
        np.isfinite(m.buffer.data["next_obs"])
    )


# ------------------------------------------------------------------ 3: atomic log rewrite
def test_3_truncate_rewrites_logs_atomically(tmp_path, monkeypatch):
    log = RunLogger(tmp_path / "run", tensorboard=False)
    for ep in range(1, 101):
        log.log_episode({"episode": ep, "total_steps": 10 * ep, "return": 1.0, "length": 10})
    path = tmp_path / "run" / "episodes.csv"
    before = path.read_bytes()

    def killed(*args):
        raise KeyboardInterrupt  # a Ctrl-C just before the rename

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        log.truncate_after(10)
    assert path.read_bytes() == before
    assert sorted(p.name for p in path.parent.iterdir()) == ["episodes.csv"]
    monkeypatch.undo()
    log.truncate_after(10)
    assert len(path.read_text().splitlines()) == 11


def test_3_json_and_csv_writers_are_atomic_and_csv_takes_the_union_of_keys(tmp_path, monkeypatch):
    from nafrl.logger import write_rows_atomic
    from nafrl.runs import write_json_atomic

    write_rows_atomic(tmp_path / "a.csv", [{"b": 1, "a": 2}, {"c": 3}])
    assert (tmp_path / "a.csv").read_text().splitlines() == ["a,b,c", "2,1,", ",,3"]
    write_json_atomic(tmp_path / "a.json", {"x": 1})

    def killed(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", killed)
    for write in (
        lambda: write_json_atomic(tmp_path / "a.json", {"x": 2}),
        lambda: write_rows_atomic(tmp_path / "a.csv", [{"a": 9}]),
    ):
        with pytest.raises(KeyboardInterrupt):
            write()
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    assert (tmp_path / "a.csv").read_text().splitlines()[1] == "2,1,"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.csv", "a.json"]


# ------------------------------------------------------------------ 4: save() targets
def test_4_save_refuses_special_files_and_follows_symlinks(tmp_path):
    m = nafrl.NAF("Pendulum-v1", seed=0, **TINY)
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    with pytest.raises(CheckpointError, match="named pipe"):
        m.save(fifo)
    assert fifo.is_fifo()
    with pytest.raises(CheckpointError, match="directory"):
        m.save(tmp_path)
    target = m.save(tmp_path / "real.npz")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    m.num_timesteps = 7
    m.save(link)
    assert link.is_symlink() and nafrl.NAF.load(target).num_timesteps == 7


def test_4_save_cleans_stale_temporaries_and_respects_umask(tmp_path):
    m = nafrl.NAF("Pendulum-v1", seed=0, **TINY)
    stale = [tmp_path / ".ck.npz.999999999.x1.tmp", tmp_path / ".ck.npz.abc123.tmp"]
    for p in stale:
        p.write_bytes(b"\0" * 1000)
    old = os.umask(0o022)
    try:
        p = m.save(tmp_path / "ck.npz")
        assert p.stat().st_mode & 0o777 == 0o644
        os.umask(0o077)
        assert m.save(tmp_path / "ck2.npz").stat().st_mode & 0o777 == 0o600
    finally:
        os.umask(old)
    assert not any(p.exists() for p in stale)


# ------------------------------------------------------------------ 9: config types
@pytest.mark.parametrize(
    "field,value",
    [
        ("noise_scale", float("inf")),
        ("learning_rate", float("nan")),
        ("hidden_sizes", (64.5, 64)),
        ("tau", True),
        ("batch_norm", 1),
        ("gamma", "0.9"),
        ("batch_size", 8.0),
        ("actor_learning_rate", float("inf")),
        ("mu_learning_rate", -1e-4),
    ],
)
def test_9_every_field_is_type_and_finiteness_checked(field, value):
    with pytest.raises(ConfigError, match=f"invalid {field}="):
        make_config(**{field: value})


@pytest.mark.parametrize("seed", [1.7, -1, 2**32, 2**70, True, "3"])
def test_9_15_seeds_are_checked(seed):
    with pytest.raises(ConfigError, match="invalid seed="):
        nafrl.NAF("Pendulum-v1", seed=seed, **TINY)


def test_9_options_of_the_other_algorithm_are_config_errors():
    with pytest.raises(ConfigError, match="DDPG does not support shared_trunk"):
        nafrl.DDPG("Pendulum-v1", shared_trunk=True)
    with pytest.raises(ConfigError, match="NAF does not support actor_learning_rate"):
        nafrl.NAF("Pendulum-v1", actor_learning_rate=1e-5)
    # A sweep validates its grid before building anything.
    for algo, names in ALGO_ONLY.items():
        other = "ddpg" if algo == "naf" else "naf"
        for n in names:
            default = getattr(Config, n)
            if n in ("model", "planner", "model_prior"):
                value = {"model": "true", "planner": "mpc", "model_prior": "gaussian"}[n]
            elif isinstance(default, bool):
                value = not default
            elif isinstance(default, int | float):
                value = 2 * default + 1 if default >= 0 else 2 * default
            else:  # None (actor_learning_rate, mu_learning_rate)
                value = 1e-4
            assert value != default, n
            with pytest.raises(ConfigError, match=n):
                validate_for_algo(make_config(**{n: value}), other)
    # Fields left at None take the algorithm's defaults (nafrl.config.ALGO_DEFAULTS).
    assert Config().obs_norm is None and Config().layer_norm is None and Config().warmup is None
    naf_cfg, ddpg_cfg = validate_for_algo(Config(), "naf"), validate_for_algo(Config(), "ddpg")
    assert naf_cfg == dataclasses.replace(
        Config(), obs_norm=True, layer_norm=True, warmup="uniform"
    )
    assert (ddpg_cfg.obs_norm, ddpg_cfg.layer_norm, ddpg_cfg.warmup) == (False, False, "policy")
    # DDPG's record of warmup is the neutral value: its run ids do not change.
    assert "warmup" not in identity_dict(ddpg_cfg) and identity_dict(naf_cfg)["warmup"] == "uniform"
    assert validate_for_algo(make_config(obs_norm=True), "ddpg").obs_norm is True


def test_ddpg_records_nafs_added_options_at_their_neutral_values():
    """NAF's defaults of issue 13 (min_log_diag, target_smoothing) mean nothing to DDPG: a
    DDPG config keeps their neutral values, so its run id and record are those of a DDPG run
    made before NAF's defaults changed, and such a record (holding the neutral values) is
    accepted; any other value is still refused."""
    from nafrl.config import ADDED_FIELDS

    naf_added = [n for n in ALGO_ONLY["naf"] if n in ADDED_FIELDS]
    assert naf_added and any(getattr(Config, n) != ADDED_FIELDS[n] for n in naf_added)
    ddpg = validate_for_algo(Config(), "ddpg")
    for n in naf_added:
        assert getattr(ddpg, n) == ADDED_FIELDS[n], n
    assert validate_for_algo(ddpg, "ddpg") == ddpg
    assert nafrl.DDPG("Pendulum-v1", **TINY).config.min_log_diag is None
    assert validate_for_algo(make_config(min_log_diag=-2.0), "naf").min_log_diag == -2.0
    with pytest.raises(ConfigError, match="min_log_diag"):
        validate_for_algo(make_config(min_log_diag=-2.0), "ddpg")


@pytest.mark.parametrize(
    "space",
    [gym.spaces.Box(-1, 1, (2,), np.int64), gym.spaces.Box(-1.0, 1.0, (0,), np.float32)],
)
def test_9_integer_or_empty_action_boxes_are_refused(space):
    env = gym.make("Pendulum-v1")
    env.unwrapped.action_space = space
    env.action_space = space
    with pytest.raises(EnvError, match="float action Box"):
        nafrl.NAF(env)


# ------------------------------------------------------------------ 10: counts
def test_10_counts_below_one_are_refused(tmp_path, capsys, pendulum_ckpt):
    assert "--episodes" in _user_error(capsys, "eval", str(pendulum_ckpt), "--episodes", "-3")
    out = tmp_path / "v.mp4"
    line = _user_error(capsys, "record", str(pendulum_ckpt), "--episodes", "0", "--out", str(out))
    assert "--episodes" in line and not out.exists()
    assert "at least one run folder" in _user_error(
        capsys, "plot", "--out", str(tmp_path / "p.png")
    )
    assert not (tmp_path / "p.png").exists()
    m = nafrl.NAF("Pendulum-v1", seed=0, run_dir=tmp_path / "run", tensorboard=False, **TINY)
    with pytest.raises(ConfigError, match="episodes"):
        m.evaluate(0)
    assert m.eval_log == [] and not (tmp_path / "run" / "evals.csv").exists()


def test_10_empty_run_dir_is_not_the_current_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for run_dir in ("", "."):
        with pytest.raises(ConfigError, match="current directory"):
            nafrl.NAF("Pendulum-v1", run_dir=run_dir, **TINY)
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ 11: NaN inputs
def test_11_predict_and_load_refuse_non_finite(tmp_path, pendulum_ckpt, capsys):
    m = nafrl.NAF.load(pendulum_ckpt)
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="NaN or inf"):
            m.predict(np.array([0.0, bad, 0.0]))

    def nan_param(arrays, meta):
        name = next(k for k in arrays if k.startswith("state") and arrays[k].dtype.kind == "f")
        arrays[name] = np.full_like(arrays[name], np.nan)

    bad_ck = _tamper(pendulum_ckpt, tmp_path / "nan.npz", nan_param)
    with pytest.raises(CheckpointError, match="NaN"):
        nafrl.NAF.load(bad_ck)
    assert "NaN" in _user_error(capsys, "eval", str(bad_ck))


# ------------------------------------------------------------------ 12: set_state
@pytest.mark.parametrize("task_id", list(TASKS))
def test_12_set_state_validates_before_writing(task_id):
    env = gym.make(task_id).unwrapped
    env.reset(seed=0)
    env.step(np.zeros(env.action_space.shape))
    state = env.get_state()
    obs = env.observe()
    for i, v in ((0, np.nan), (env.state_size - 1, np.inf), (env._mj_state_size, 2.5)):
        bad = state.copy()
        bad[i] = v
        with pytest.raises(ValueError, match="state"):
            env.set_state(bad)
        np.testing.assert_array_equal(env.get_state(), state)
        np.testing.assert_array_equal(env.observe(), obs)
    env.close()


# ------------------------------------------------------------------ 15: memory
@pytest.mark.parametrize(
    "field,value",
    [("buffer_size", 10**13), ("hidden_sizes", (10**6, 10**6)), ("batch_size", 10**11)],
)
def test_15_sizes_that_cannot_fit_in_memory_are_refused_up_front(field, value, capsys):
    with pytest.raises(ConfigError, match=rf"^{field}=.* needs about .*B of memory"):
        nafrl.NAF("Pendulum-v1", **{field: value})
    flag = "--" + field.replace("_", "-")
    values = [str(v) for v in value] if isinstance(value, tuple) else [str(value)]
    line = _user_error(capsys, "train", "--env", "Pendulum-v1", flag, *values, "--steps", "10")
    assert field in line and "memory" in line


# ------------------------------------------------------------------ 16: corrupt run folders
@pytest.mark.parametrize(
    "text,match",
    [("{not json", "corrupt"), ("[1, 2]", "JSON list"), ('{"algo": "naf"}', "lacks the key")],
)
def test_16_resume_with_corrupt_config_json(tmp_path, capsys, text, match):
    (tmp_path / "config.json").write_text(text)
    line = _user_error(capsys, "train", "--resume", str(tmp_path))
    assert "config.json" in line and match in line


# ------------------------------------------------------------------ 17: tampered checkpoints
def _drop(key):
    def edit(arrays, meta):
        del meta[key]

    return edit


def _set(**kv):
    def edit(arrays, meta):
        meta.update(kv)

    return edit


def _array(name, fn):
    def edit(arrays, meta):
        arrays[name] = fn(arrays[name])

    return edit


TAMPERED = {
    "no seed": _drop("seed"),
    "no config": _drop("config"),
    "list header": lambda a, m: [m],
    "bad replay_rng": _set(replay_rng={"bit_generator": "PCG64", "state": "x"}),
    "float rng state": _set(
        replay_rng={
            "bit_generator": "PCG64",
            "state": {"state": 1.5, "inc": 3},
            "has_uint32": 0,
            "uinteger": 0,
        }
    ),
    "seed bit generator": _set(env_rng={"bit_generator": "seed", "state": {}}),
    "config a list": _set(config=[1, 2]),
    "negative steps": _set(num_timesteps=-1),
    "bool seed": _set(seed=True),
    "buffer length": _array("buffer/reward", lambda a: a[:-1]),
    "no rng key": lambda a, m: a.__delitem__("rng/key"),
    "float rng key": _array("rng/key", lambda a: a.astype(np.float32)),
    "pos -5": _array("buffer/_pos", lambda a: np.array(-5)),
    "pos 1e12": _array("buffer/_pos", lambda a: np.array(10**12)),
    "integer params": lambda a, m: a.update(
        {k: v.astype(np.int32) for k, v in a.items() if k.startswith("state") and v.ndim == 2}
    ),
}


@pytest.mark.parametrize("case", list(TAMPERED))
def test_17_tampered_checkpoints_raise_checkpoint_error(case, tmp_path, pendulum_ckpt, monkeypatch):
    def called(*args, **kwargs):
        raise AssertionError("the header called a function of np.random")

    monkeypatch.setattr(np.random, "seed", called)
    bad = _tamper(pendulum_ckpt, tmp_path / "bad.npz", TAMPERED[case])
    with pytest.raises(CheckpointError):
        nafrl.NAF.load(bad)


def test_17_npy_renamed_npz_and_cli_one_line(tmp_path, capsys):
    path = tmp_path / "fake.npz"
    with open(path, "wb") as f:
        np.save(f, np.zeros(3))
    with pytest.raises(CheckpointError, match=r"\.npy"):
        nafrl.NAF.load(path)
    assert "not a nafrl checkpoint" in _user_error(capsys, "eval", str(path))


# ------------------------------------------------------------------ 18: render / record
def test_18_render_and_record_errors_are_one_line(tmp_path, capsys, pendulum_ckpt):
    for task in ("nafrl/Nope-v1", "Pendulum-v1"):
        assert "unknown nafrl task" in _user_error(capsys, "render", task)
    for out, match in (
        (tmp_path / "noext", "extension"),
        (tmp_path, "folder"),
        (tmp_path / "afile" / "x.png", "cannot create folder"),
    ):
        (tmp_path / "afile").write_text("")
        assert match in _user_error(capsys, "render", CARTPOLE, "--out", str(out))
    assert not (tmp_path / "noext").exists()
    # A run on a non-MuJoCo env: its renderer's dependency (pygame) is named, no file is left.
    out = tmp_path / "v.mp4"
    if not _has("pygame"):
        assert "gymnasium[classic-control]" in _user_error(
            capsys, "record", str(pendulum_ckpt), "--out", str(out)
        )
    else:
        assert _cli(capsys, "record", str(pendulum_ckpt), "--out", str(out))[0] == 0
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _has(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


# ------------------------------------------------------------------ 19: read-only, full disk
def test_19_read_only_folder_and_full_disk_give_one_line(tmp_path):
    nafrl_cmd = _nafrl_script()
    train = f"{nafrl_cmd} train --env Pendulum-v1 --steps 400 --no-progress-bar " + " ".join(
        TINY_FLAGS
    )
    script = f"""
mkdir ro full
mount -t tmpfs -o ro,size=1m tmpfs ro
mount -t tmpfs -o size=64k tmpfs full
head -c 40000 /dev/zero > full/filler
set +e
{train} --run-dir ro/run 2> ro.err; echo $? > ro.rc
{train} --run-dir full/run --checkpoint-interval 1 2> full.err; echo $? > full.rc
"""
    r = _in_namespace(script, tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    for name, words in (("ro", "Read-only file system"), ("full", "No space left on device")):
        err = (tmp_path / f"{name}.err").read_text().strip().splitlines()
        assert (tmp_path / f"{name}.rc").read_text().strip() == "2", err[-20:]
        assert len(err) == 1 and words in err[0], err[-20:]


def test_19_full_disk_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    m = nafrl.NAF("Pendulum-v1", seed=0, **TINY)
    path = m.save(tmp_path / "checkpoint.npz")
    before = path.read_bytes()

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "savez", full)
    with pytest.raises(StorageError, match="No space left.*previous checkpoint .* unchanged"):
        m.save(path)
    assert path.read_bytes() == before and os.listdir(tmp_path) == ["checkpoint.npz"]


# ------------------------------------------------------------------ 20: optional dependencies
def test_20_missing_optional_dependency_names_the_extra(capsys):
    if _has("Box2D"):
        pytest.fail("this test needs an env whose optional dependency is missing (Box2D)")
    with pytest.raises(EnvError, match=r"gymnasium\[box2d\]"):
        nafrl.NAF("LunarLanderContinuous-v3")
    line = _user_error(capsys, "train", "--env", "LunarLanderContinuous-v3", "--steps", "10")
    assert "gymnasium[box2d]" in line


# ------------------------------------------------------------------ CLI convention
def test_cli_user_errors_are_one_line_and_debug_shows_the_traceback(capsys, tmp_path):
    line = _user_error(capsys, "train", "--env", "Nope-v0", "--steps", "10")
    assert "unknown env id 'Nope-v0'" in line
    with pytest.raises(EnvError):
        main(["--debug", "train", "--env", "Nope-v0", "--steps", "10"])
    assert issubclass(TrainingDivergedError, NafrlError)
    assert all(issubclass(e, NafrlError) for e in (CheckpointError, ConfigError, RunFolderError))


# ------------------------------------------------------------------ issue 10 item 7: logs
@pytest.mark.parametrize("cls", [nafrl.NAF, nafrl.DDPG])
def test_episodes_csv_holds_every_logged_field(cls, tmp_path):
    m = cls("Pendulum-v1", seed=0, run_dir=tmp_path, tensorboard=False, **TINY)
    m.learn(400)
    with (tmp_path / "episodes.csv").open() as f:
        header = f.readline().strip().split(",")
    logged = set().union(*(row.keys() for row in m.episode_log))
    assert logged <= set(header) and {"guided", "q_loss"} <= logged
    if cls is nafrl.DDPG:
        assert "pi_loss" in logged
        rows = (tmp_path / "episodes.csv").read_text().splitlines()[1:]
        assert all(r.split(",")[header.index("pi_loss")] not in ("", "nan") for r in rows[1:])


def test_logging_an_unknown_field_is_an_error(tmp_path):
    log = RunLogger(tmp_path / "run", tensorboard=False)
    with pytest.raises(ValueError, match="unknown field.*bogus"):
        log.log_episode({"episode": 1, "total_steps": 5, "bogus": 1.0})
    assert set(EPISODE_FIELDS) >= {"guided", "pi_loss", "q_loss", "mean_v"}


# ------------------------------------------------------------------ issue 10 item 8: runtime
def test_runtime_configures_a_worker_process():
    code = (
        "import os, numpy as np; from nafrl import runtime;"
        "runtime.configure_process(threads=1);"
        "assert runtime.get_blas_threads() in (1, None);"
        "assert os.environ['OMP_NUM_THREADS'] == '1', os.environ['OMP_NUM_THREADS'];"
        "assert 'xla_cpu_multi_thread_eigen=false' in os.environ['XLA_FLAGS'];"
        "assert 'ynn_fusion_type=dot' in os.environ['XLA_FLAGS'];"
        "import jax.numpy as jnp; assert float(jnp.ones(3).sum()) == 3.0;"
        "import gc; gc.freeze(); n = gc.get_freeze_count();"
        "exec('with runtime.gc_frozen(): pass'); assert gc.get_freeze_count() == n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "XLA_FLAGS")}
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    before = runtime.get_blas_threads()
    with runtime.blas_threads(1):
        assert runtime.get_blas_threads() in (1, None)
    assert runtime.get_blas_threads() == before
    with pytest.raises(ValueError, match="threads"):
        runtime.configure_process(threads=0)


def test_9_configs_saved_before_the_ddpg_actor_rate_default_still_validate():
    # config.json files written before actor_learning_rate defaulted to 1e-4 hold None.
    assert Config().actor_learning_rate == 1e-4
    old = make_config(actor_learning_rate=None)
    assert validate_for_algo(old, "naf").actor_learning_rate is None
    assert validate_for_algo(old, "ddpg").actor_learning_rate is None
    with pytest.raises(ConfigError, match="NAF does not support actor_learning_rate"):
        validate_for_algo(make_config(actor_learning_rate=1e-3), "naf")


def test_a_sweep_worker_gets_every_xla_flag(tmp_path, monkeypatch):
    # A bare token in XLA_FLAGS makes XLA drop every flag after it: the sweep's workers had
    # one until 2026-12-07 (and ran without YNNPACK by accident; now on purpose).
    from nafrl.experiments.sweep import worker_env

    code = "import os, nafrl; print(os.environ['XLA_FLAGS'])"
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"} | worker_env(tmp_path)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    tokens = r.stdout.split()
    assert all(t.startswith("--") for t in tokens), tokens
    assert tokens == ["--xla_cpu_multi_thread_eigen=false"], tokens
    monkeypatch.setenv("XLA_FLAGS", "--xla_cpu_multi_thread_eigen=false bare")
    with pytest.warns(UserWarning, match="'bare' is not a --flag"):
        runtime.configure_process()
