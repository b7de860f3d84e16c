"""The original Docker `CMD` (`python -m bl_reservoir.energy_detection.energy_detection [INPUT]`).

With an input it runs that one job end to end (fetch, search, upload to the bucket); without one
it joins the cluster as a worker for `energy_detection/preprocess_fine`.
"""

from bl_reservoir.script import docker_cmd

if __name__ == "__main__":
    docker_cmd("energy_detection/preprocess_fine")
