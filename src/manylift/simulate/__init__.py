"""Simulators with known truth: the repeated-experiment program, single experiments, multi-arm."""

from manylift.simulate.program import ProgramSpec, ProgramTruth, simulate_program

__all__ = ["ProgramSpec", "ProgramTruth", "simulate_program"]
