.PHONY: serve test bench setup

serve:  ## start the server on the embedded defaults
	scripts/serve.sh

test:   ## run every check and test
	scripts/test.sh

bench:  ## run the benchmark suite
	scripts/setup.sh --dev
	.venv/bin/python -m benchmarks

setup:
	scripts/setup.sh --dev
