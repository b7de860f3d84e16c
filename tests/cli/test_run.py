"""`bl-reservoir run ALG INPUT [flags] [-- ALG_OPTIONS]`: flags anywhere before `--`, everything after it
to the algorithm (the README's own example once failed: nothing but `--` between INPUT and the options)."""

from __future__ import annotations

import pytest

from bl_reservoir.cli import build_parser
from bl_reservoir.cli.run import split_rest

ALG = "energy_detection/preprocess_fine"


@pytest.mark.parametrize("argv, force, bucket, options", [
    ([ALG, "obs.h5", "--", "--threshold", "2048"], False, None, ["--threshold", "2048"]),
    ([ALG, "obs.h5", "--force", "--", "--threshold", "2048"], True, None, ["--threshold", "2048"]),
    (["--force", ALG, "obs.h5", "--", "--threshold", "2048"], True, None, ["--threshold", "2048"]),
    ([ALG, "obs.h5", "--bucket", "gs://b"], False, "gs://b", []),
    ([ALG, "obs.h5", "--", "--bucket", "x", "--", "y"], False, None, ["--bucket", "x", "--", "y"]),
])
def test_flags_before_the_separator_and_options_after_it(argv, force, bucket, options):
    args = build_parser(["run", *argv]).parse_args(["run", *argv])
    assert split_rest(args) == options
    assert (args.algorithm, args.input, args.force, args.bucket) == (ALG, "obs.h5", force, bucket)


def test_an_input_is_required(capsys):
    args = build_parser(["run", ALG]).parse_args(["run", ALG])
    with pytest.raises(SystemExit):
        split_rest(args)
    assert "the following arguments are required: input" in capsys.readouterr().err
