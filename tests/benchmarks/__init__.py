"""Tests of the benchmark scripts' own logic (never timed, never training)."""
