"""Another tool's fills, written without pconv_jax: OpenCV's Telea or NS on exported pairs.

    pconv evaluate --images ... --masks ... --size 256 --export-pairs PAIRS
    python experiments/fill_with_opencv.py PAIRS FILLS [telea|ns]
    pconv evaluate --pairs PAIRS --predictions FILLS --out RESULTS

The example of the `--export-pairs` contract: read images/NAME.png and masks/NAME.png (white =
hole), never use the hole's pixels (blacked out here: cv2.inpaint reads them), write
FILLS/NAME.png at the same size.
"""

import json
import pathlib
import sys

import cv2


def main(pairs: pathlib.Path, out: pathlib.Path, method: str = "telea") -> None:
    flag = {"telea": cv2.INPAINT_TELEA, "ns": cv2.INPAINT_NS}[method]
    out.mkdir(parents=True)
    for name in json.loads((pairs / "pairs.json").read_text())["pairs"]:
        bgr = cv2.imread(str(pairs / "images" / f"{name}.png"), cv2.IMREAD_COLOR)
        hole = cv2.imread(str(pairs / "masks" / f"{name}.png"), cv2.IMREAD_GRAYSCALE) > 127
        bgr[hole] = 0
        filled = cv2.inpaint(bgr, hole.astype("uint8") * 255, 3, flag)
        cv2.imwrite(str(out / f"{name}.png"), filled)


if __name__ == "__main__":
    main(pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2]), *sys.argv[3:])
