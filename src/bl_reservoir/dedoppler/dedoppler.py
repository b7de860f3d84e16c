"""The original Docker `CMD` (`python -m bl_reservoir.dedoppler.dedoppler [INPUT]`).

With an input it runs that one job end to end (fetch, search, upload to the bucket); without one
it joins the cluster as a worker for `dedoppler/search`.
"""

from bl_reservoir.script import docker_cmd

if __name__ == "__main__":
    docker_cmd("dedoppler/search")
