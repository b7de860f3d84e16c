"""Sensitivity by injection and recovery: how many injected signals an algorithm finds, by SNR,
drift rate and width, and how many false hits it gives per MHz of noise.

`grid` says where signals go, `harness` synthesises files and runs algorithms through the runner,
`matching` pairs hits with the truth, `summary` turns matches into numbers, `report` saves them.
"""
