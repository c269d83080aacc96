"""Print how long P3M face obfuscation takes on a 1080p portrait on this machine.

    python benchmarks/speed_privacy.py [--repeat 7]

Times detection (dlib HOG on a copy scaled to 800 px, 68 landmarks, false-face
checks) and the full anonymize() (plus mask and blur), in wall and CPU time,
and the fast blur
against OpenCV's direct Gaussian in the same process, back to back after a
warm-up, median of the repeats.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import cv2
import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from privacy_scene import portrait_1080p  # noqa: E402

from mattezoo.privacy import anonymize, detect_faces, has_dlib  # noqa: E402
from mattezoo.privacy.blur import gaussian_blur  # noqa: E402


def median_seconds(fn, repeat: int, clock=time.perf_counter) -> float:
    fn()  # warm-up: model loading, caches
    times = []
    for _ in range(repeat):
        start = clock()
        fn()
        times.append(clock() - start)
    return statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    image = portrait_1080p()
    print(f"portrait {image.shape[1]}x{image.shape[0]}, OpenCV threads {cv2.getNumThreads()}")
    for backend in ["dlib68", "haar"] if has_dlib() else ["haar"]:
        result = anonymize(image, detector=backend)
        assert len(result.faces) == 1, f"{backend} found {len(result.faces)} faces"
        detect = median_seconds(lambda: detect_faces(image, backend), args.repeat)
        total = median_seconds(lambda: anonymize(image, detector=backend), args.repeat)
        # CPU time too: on a shared machine wall time includes waiting for a core.
        cpu = median_seconds(lambda: anonymize(image, detector=backend), args.repeat, time.process_time)
        print(
            f"{backend:7s} detection {detect * 1e3:7.1f} ms   anonymize (detection + mask + blur) {total * 1e3:7.1f} ms wall,"
            f" {cpu * 1e3:7.1f} ms CPU   sigma {result.sigmas[0]:.1f} px"
        )
    window = image[:600, 700:1300].astype(np.float32)
    fast = median_seconds(lambda: gaussian_blur(window, 40.0), args.repeat)
    direct = median_seconds(lambda: cv2.GaussianBlur(window, (0, 0), 40.0), args.repeat)
    print(f"blur sigma 40 on 600x600: fast {fast * 1e3:.2f} ms, cv2 direct {direct * 1e3:.2f} ms, speed-up x{direct / fast:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
