#!/usr/bin/python3
"""Prints the wall-clock time (seconds since the epoch) COUNT times, INTERVAL seconds apart.

What bench/console.py's exec job runs, allowed by its exact path: a plain script, so the
relay's allow-list needs no shell (a shell is a launcher, refused without argument rules).
"""

import sys
import time


def main() -> None:
    count, interval = int(sys.argv[1]), float(sys.argv[2])
    for n in range(count):
        if n:
            time.sleep(interval)
        print(f"{time.time():.6f}", flush=True)


if __name__ == "__main__":
    main()
