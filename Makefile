# The two commands a new engineer needs; both work on a fresh machine with Rust and Python.
.PHONY: dev test bench bench-usage bench-console lint

dev: ## run the whole stack locally (emulator + every function on http://127.0.0.1:9000)
	bash infra/scripts/dev.sh

test: ## every check and test, against an emulator it starts itself
	bash infra/scripts/test.sh

bench: ## CPU benchmarks: key verification, workflow engine per node, client check(feature)
	bash infra/scripts/bench.sh

bench-console: ## console page server time per page on the in-memory store (demo-sized book)
	bash infra/scripts/bench-console.sh

bench-usage: ## usage-processor writes per event and throughput (against the emulator)
	bash infra/scripts/bench-usage.sh

lint: ## template.yaml and docs/openapi.yaml only
	bash infra/scripts/lint-template.sh
