.PHONY: serve test bench chaos setup

serve:  ## start the server on the embedded defaults
	scripts/serve.sh

test:   ## run every check and test
	scripts/test.sh

bench:  ## run the benchmark suite
	scripts/setup.sh --dev
	.venv/bin/python -m benchmarks

chaos:  ## faults against real servers on loopback (cuts, SIGKILL, a Redis outage, a slow client), about a minute
	scripts/setup.sh --dev
	.venv/bin/python tests/chaos.py

setup:
	scripts/setup.sh --dev
