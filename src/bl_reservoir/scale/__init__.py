"""BL@Scale: campaigns of one algorithm over many observations, on Dask, with a persistent job store.

`store` keeps campaigns, jobs, events and the hits index (SQL); `engine` runs jobs as Dask tasks;
`campaigns` holds submit, resume, retry and cancel; `worker` starts a Dask worker that serves
algorithms. Import the submodules you need: this package imports nothing heavy by itself.
"""
