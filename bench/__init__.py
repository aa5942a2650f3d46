"""djflow benchmarks (not part of `make test`). `make bench` runs bench/engine.py."""
