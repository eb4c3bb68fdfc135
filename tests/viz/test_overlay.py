import numpy as np

from mvface.viz.overlay import draw_box, draw_landmarks


def test_draw_landmarks_marks_points_and_keeps_input() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    pts = np.stack([np.linspace(20, 80, 68), np.linspace(30, 70, 68)], axis=1)
    out = draw_landmarks(image, pts, color=(0, 255, 0))
    assert image.max() == 0  # input untouched
    for x, y in pts[[0, 33, 67]].round().astype(int):
        assert out[y, x, 1] > 0
    assert out[5, 95].max() == 0  # far from every point


def test_hidden_points_use_their_colour() -> None:
    image = np.zeros((100, 100, 3), np.uint8)
    pts = np.full((68, 2), 50.0)
    vis = np.zeros(68, bool)
    out = draw_landmarks(image, pts, visibility=vis, hidden_color=(255, 0, 0), lines=False)
    assert out[..., 0].max() > 0 and out[..., 1].max() == 0


def test_draw_box() -> None:
    out = draw_box(np.zeros((50, 50, 3), np.uint8), np.array([10, 10, 40, 40]), (255, 255, 255))
    assert out[10, 25].max() > 0 and out[25, 25].max() == 0
