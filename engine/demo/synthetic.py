"""A deterministic synthetic dashcam clip, with the class of every pixel known.

The scene has what the scoring networks care about: a sky with drifting clouds, a textured road
in perspective with moving lane marks, roadside buildings and poles, vehicles that move
relative to the camera, a little camera shake and sensor noise. Each frame comes with its class
map (sky, road, lane marking, vehicle, other), which the demo scorer's SegNet is fitted to.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from engine.media.video import CLIP_FPS, HEIGHT, WIDTH

SKY, ROAD, LANE, VEHICLE, OTHER = range(5)
FPS = CLIP_FPS

_FOCAL = 910.0  # the comma camera's focal length, in pixels
_CAM_HEIGHT = 1.25  # metres above the road
_SPEED = 14.0  # metres per second
_LANE_W = 3.6
_ROAD_HALF = 1.5 * _LANE_W
# The camera's luma noise, in grey levels (std). A real clip's own encode spends most of its
# bytes on it and an encode of shrunk frames drops it, so the challenge's rates are small.
_SENSOR_NOISE = 3.5


@dataclass(frozen=True)
class _Vehicle:
    lane: float  # lateral centre, metres
    z0: float  # distance at t=0, metres
    speed: float  # metres per second relative to the camera (negative: we gain on it)
    colour: tuple[int, int, int]
    width: float
    height: float


def _noise(rng: np.random.Generator, size: int, octaves: int) -> np.ndarray:
    """Tileable value noise in [0, 1] with detail at several scales."""
    out = np.zeros((size, size), np.float32)
    weight = 1.0
    for octave in range(octaves):
        cells = 4 * 2**octave
        grid = rng.random((cells, cells)).astype(np.float32)
        reps = size // cells
        layer = np.kron(grid, np.ones((reps, reps), np.float32))
        # Blur the blocks into smooth bumps with a box filter, wrapping around the tile.
        k = max(1, reps // 2)
        for axis in (0, 1):
            layer = sum(np.roll(layer, s, axis=axis) for s in range(-k, k + 1)) / (2 * k + 1)
        out += weight * layer
        weight *= 0.55
    out -= out.min()
    return out / out.max()


class SyntheticDrive:
    """Renders frame `i` of the synthetic drive, seeded and deterministic."""

    def __init__(self, seed: int = 0) -> None:
        self.seed = seed
        rng = np.random.default_rng(seed)
        self.asphalt = _noise(rng, 256, 6)
        self.grass = _noise(rng, 256, 5)
        self.clouds = _noise(rng, 256, 4)
        self.facade = _noise(rng, 256, 6)
        self.shake = rng.normal(0, 1, (4096, 2)).astype(np.float32)
        colours = [(200, 30, 30), (30, 60, 170), (220, 220, 220), (40, 40, 40), (230, 180, 20)]
        self.vehicles = [
            _Vehicle(
                lane=float(rng.choice([-_LANE_W, 0.0, _LANE_W])),
                z0=float(rng.uniform(12, 80)),
                speed=float(rng.uniform(-4, 4)),
                colour=colours[i % len(colours)],
                width=float(rng.uniform(1.7, 2.2)),
                height=float(rng.uniform(1.4, 2.6)),
            )
            for i in range(5)
        ]
        self.buildings = [
            (float(x), float(rng.uniform(6, 20)), float(rng.uniform(8, 25))) for x in np.arange(0, 600, 18)
        ]
        ys, xs = np.mgrid[0:HEIGHT, 0:WIDTH]
        self._ys = ys.astype(np.float32)
        self._xs = xs.astype(np.float32)

    def render(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame i as (H, W, 3) uint8 RGB and its (H, W) uint8 class map."""
        t = i / FPS
        dx = 3.0 * np.sin(t * 2.1) + 0.8 * self.shake[i % len(self.shake), 0]
        dy = 2.0 * np.sin(t * 3.3 + 1.0) + 0.8 * self.shake[i % len(self.shake), 1]
        horizon = HEIGHT * 0.46 + dy
        cx = WIDTH / 2 + dx + 20 * np.sin(t * 0.4)  # a gentle curve to the road's vanishing point
        travelled = _SPEED * t

        ys, xs = self._ys, self._xs
        rgb = np.empty((HEIGHT, WIDTH, 3), np.float32)
        cls = np.full((HEIGHT, WIDTH), OTHER, np.uint8)

        # Sky: a gradient with clouds drifting sideways.
        sky = ys < horizon
        up = np.clip((horizon - ys) / horizon, 0, 1)
        cloud = self.clouds[(ys * 0.25).astype(int) % 256, ((xs + 8 * t * FPS) * 0.25).astype(int) % 256]
        cloud = np.clip((cloud - 0.45) * 2.5, 0, 1) * (up > 0.15)
        for c, (lo, hi) in enumerate(((150, 70), (185, 130), (215, 220))):
            rgb[..., c] = np.where(sky, lo + (hi - lo) * up + cloud * (245 - lo - (hi - lo) * up), 0)
        cls[sky] = SKY

        # Ground plane: every pixel below the horizon has a depth and a lateral position.
        ground = ~sky
        dist = np.where(ground, _CAM_HEIGHT * _FOCAL / np.maximum(ys - horizon, 0.5), 1e6)
        lateral = (xs - cx) * dist / _FOCAL
        along = dist + travelled
        on_road = ground & (np.abs(lateral) < _ROAD_HALF)
        u = (lateral * 40).astype(np.int64) % 256
        v = (along * 40).astype(np.int64) % 256
        grain = self.asphalt[(along * 400).astype(np.int64) % 256, (lateral * 400).astype(np.int64) % 256]
        asphalt = 65 + 45 * self.asphalt[v, u] + 30 * grain
        grass = self.grass[(along * 20).astype(np.int64) % 256, (lateral * 20).astype(np.int64) % 256]
        for c, (base, amp) in enumerate(((60, 50), (110, 70), (40, 30))):
            rgb[..., c] = np.where(on_road, asphalt, np.where(ground, base + amp * grass, rgb[..., c]))
        cls[on_road] = ROAD

        # Lane marks: dashed between lanes, solid at the edges; they stream towards the camera.
        half_mark = 0.08
        dashed = (np.abs(np.abs(lateral) - _LANE_W / 2) < half_mark) & ((along % 12.0) < 4.5)
        edges = np.abs(np.abs(lateral) - (_ROAD_HALF - 0.2)) < half_mark
        lane = on_road & (dashed | edges) & (dist < 200)
        rgb[lane] = (235, 235, 225)
        cls[lane] = LANE

        self._draw_buildings(rgb, cls, horizon, cx, travelled)
        self._draw_vehicles(rgb, cls, horizon, cx, t)
        noise = np.random.default_rng((self.seed, i)).standard_normal((HEIGHT, WIDTH), np.float32)
        rgb += _SENSOR_NOISE * noise[..., None]
        return np.clip(rgb, 0, 255).astype(np.uint8), cls

    def _draw_buildings(self, rgb: np.ndarray, cls: np.ndarray, horizon: float, cx: float, travelled: float) -> None:
        """Roadside facades with windows, and poles, all passing by as the car drives."""
        for along0, height, setback in reversed(self.buildings):
            z = (along0 - travelled) % 600.0
            if z < 4:
                continue
            for side in (-1, 1):
                x_near = cx + side * (_ROAD_HALF + setback) * _FOCAL / z
                width = 14.0 * _FOCAL / z
                top = horizon - (height - _CAM_HEIGHT) * _FOCAL / z
                bottom = horizon + _CAM_HEIGHT * _FOCAL / z
                x0, x1 = sorted((x_near, x_near + side * width))
                r0, r1 = int(max(top, 0)), int(min(bottom, HEIGHT))
                c0, c1 = int(max(x0, 0)), int(min(x1, WIDTH))
                if r1 <= r0 or c1 <= c0:
                    continue
                block = self.facade[
                    np.arange(r0, r1)[:, None] * 3 % 256, (np.arange(c0, c1)[None, :] * 3 + int(z)) % 256
                ]
                shade = 90 + 80 * block
                windows = ((np.arange(r0, r1)[:, None] - top) % max(3.0, 120 / z * 10) < max(1.5, 60 / z * 10)) & (
                    (np.arange(c0, c1)[None, :] - x0) % max(3.0, 90 / z * 10) < max(1.5, 50 / z * 10)
                )
                region = rgb[r0:r1, c0:c1]
                region[..., 0] = np.where(windows, 60, shade * 1.05)
                region[..., 1] = np.where(windows, 80, shade * 0.95)
                region[..., 2] = np.where(windows, 110, shade * 0.85)
                cls[r0:r1, c0:c1] = OTHER
                pole_x = int(x_near - side * 2.0 * _FOCAL / z)
                pole_w = max(1, int(0.3 * _FOCAL / z))
                pole_top = int(max(horizon - (8 - _CAM_HEIGHT) * _FOCAL / z, 0))
                if 0 <= pole_x < WIDTH:
                    rgb[pole_top:r1, pole_x : pole_x + pole_w] = (50, 50, 55)
                    cls[pole_top:r1, pole_x : pole_x + pole_w] = OTHER

    def _draw_vehicles(self, rgb: np.ndarray, cls: np.ndarray, horizon: float, cx: float, t: float) -> None:
        """Boxes with a rear window and tail lights, far ones first so near ones occlude them."""
        placed = []
        for car in self.vehicles:
            z = 5 + (car.z0 + car.speed * t - 5) % 90
            placed.append((z, car))
        for z, car in sorted(placed, key=lambda p: -p[0]):
            scale = _FOCAL / z
            bottom = horizon + _CAM_HEIGHT * scale
            top = bottom - car.height * scale
            left = cx + (car.lane - car.width / 2) * scale
            right = cx + (car.lane + car.width / 2) * scale
            r0, r1 = int(max(top, 0)), int(min(bottom, HEIGHT))
            c0, c1 = int(max(left, 0)), int(min(right, WIDTH))
            if r1 <= r0 or c1 <= c0:
                continue
            rows = (np.arange(r0, r1)[:, None] - top) / max(bottom - top, 1)
            cols = (np.arange(c0, c1)[None, :] - left) / max(right - left, 1)
            body = np.array(car.colour, np.float32) * (0.75 + 0.25 * (1 - rows))[..., None]
            window = (rows > 0.12) & (rows < 0.42) & (cols > 0.12) & (cols < 0.88)
            lights = (rows > 0.55) & (rows < 0.68) & ((cols < 0.16) | (cols > 0.84))
            region = np.broadcast_to(body, (r1 - r0, c1 - c0, 3)).copy()
            region[np.broadcast_to(window, region.shape[:2])] = (35, 45, 60)
            region[np.broadcast_to(lights, region.shape[:2])] = (255, 40, 30)
            rgb[r0:r1, c0:c1] = region
            cls[r0:r1, c0:c1] = VEHICLE

    def frames(self, count: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The first `count` frames with their class maps."""
        for i in range(count):
            yield self.render(i)
