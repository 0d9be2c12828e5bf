"""Synthetic data for tests, benchmarks and demos."""
