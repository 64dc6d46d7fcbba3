"""Save an episode of an environment as a video (MP4 or GIF) through ``imageio``.

``imageio`` is an optional dependency: ``pip install "hfcontrol[video]"`` (``imageio`` and,
for MP4, ``imageio-ffmpeg``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["record"]

#: GIF frame rates above this are reduced by keeping every k-th frame (viewers do not show
#: GIF frames shorter than 20 ms).
MAX_GIF_FPS = 50.0


def _imageio():
    try:
        import imageio.v3 as iio
    except ImportError as exc:
        raise ImportError('plants.envs.record needs imageio: pip install "hfcontrol[video]" '
                          "(imageio, and imageio-ffmpeg for MP4)") from exc
    return iio


def record(env: Any, policy: Callable[[np.ndarray], Any], path: str | os.PathLike,
           seed: int | None = None) -> float:
    """Run one episode of ``env`` with ``policy`` and save its frames as a video.

    Parameters
    ----------
    env : gymnasium.Env
        An environment made with ``render_mode="rgb_array"`` (e.g.
        ``gymnasium.make("plants/ArmReach-v0", render_mode="rgb_array")``).
    policy : callable
        ``obs -> action``. If it has a ``reset()`` method (as the policies of
        ``hfcontrol.Controller.as_policy`` do) it is called before the episode.
    path : str or path
        Where to write the video: ``.mp4`` (needs ``imageio-ffmpeg``) or ``.gif``. The frame
        rate is ``env.metadata["render_fps"]`` (for a GIF at most 50 frames per second:
        every k-th frame is kept).
    seed : int, optional
        Passed to ``env.reset(seed=seed)``.

    Returns
    -------
    float
        The episode's return (sum of rewards).
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"path must end in .mp4 or .gif, got {str(path)!r}")
    iio = _imageio()
    if suffix == ".mp4":
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError as exc:
            raise ImportError('writing MP4 needs imageio-ffmpeg: pip install "hfcontrol[video]"'
                              " (or save a .gif)") from exc
    if getattr(env, "render_mode", None) != "rgb_array":
        raise ValueError('env must be made with render_mode="rgb_array", got render_mode='
                         f"{getattr(env, 'render_mode', None)!r}")
    if not callable(policy):
        raise TypeError(f"policy must be a callable obs -> action, got {type(policy).__name__}")
    fps = float(env.metadata.get("render_fps") or 30.0)
    obs, _ = env.reset(seed=seed)
    if hasattr(policy, "reset"):
        policy.reset()
    frames = [env.render()]
    total = 0.0
    while True:
        obs, reward, terminated, truncated, _ = env.step(policy(obs))
        total += float(reward)
        frames.append(env.render())
        if terminated or truncated:
            break
    if suffix == ".gif":
        keep = max(1, int(np.ceil(fps / MAX_GIF_FPS)))
        frames, fps = frames[::keep], fps / keep
        iio.imwrite(path, np.stack(frames), extension=".gif", duration=1000.0 / fps, loop=0)
    else:
        iio.imwrite(path, np.stack(frames), extension=".mp4", fps=fps, plugin="FFMPEG",
                    macro_block_size=1)
    return total
