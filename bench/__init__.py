"""Benchmarks: xrm side by side with peer libraries on the same data; `make bench` runs them."""
