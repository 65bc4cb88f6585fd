"""The executor clusters of tests/pipeline (a local Ray head, the local Slurm of .ci/slurm-up) for the dedup phases."""

from tests.pipeline.conftest import job_pythonpath, ray_address, slurm_cluster  # noqa: F401
