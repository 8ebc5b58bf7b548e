"""``talker sheet``: contact sheets of every pose, one row per portrait."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
from conftest import media

from talker.sheet import POSES, contact_sheet


def test_sheet_has_a_row_per_portrait_and_shows_a_face_that_fills_its_picture(tmp_path: Path) -> None:
    face = cv2.imread(str(media("faces", "astronaut_eileen_collins.png")))
    # a photo cropped to the face: 1.5 times the face's extent is more than the whole picture, and the
    # crop around the face used to start off the image and show a few pixels of one cheek, blown up
    tight = face[55:193, 155:293]
    tight_path = tmp_path / "tight.png"
    cv2.imwrite(str(tight_path), tight)
    out = contact_sheet([media("faces", "astronaut_eileen_collins.png"), tight_path], tmp_path / "s.png", tile=96)
    sheet = cv2.imread(str(out))
    assert sheet.shape == (2 * 96, (len(POSES) + 1) * 96, 3)
    row = sheet[96:, :96].astype(np.float64)  # the tight portrait's first tile
    want = cv2.resize(tight, (96, 96), interpolation=cv2.INTER_AREA).astype(np.float64)
    # the whole picture, not a blur of a few pixels (the tile's label aside)
    assert row[30:].std() > 25
    assert np.abs(row[30:] - want[30:]).mean() < 20
