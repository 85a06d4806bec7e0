"""The benchmark suite's command: ``python -m benchmarks`` (the suite lives in ``sessionwire.bench``)."""
