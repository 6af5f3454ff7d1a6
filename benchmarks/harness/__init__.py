"""The `make bench` harness: containers, raw baselines, playbook runs, statistics and the report."""
