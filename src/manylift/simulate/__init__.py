"""Simulators with known truth: the repeated-experiment program, single experiments, multi-arm."""

from manylift.simulate.multiarm import MultiArmExperiment, simulate_multiarm
from manylift.simulate.program import ProgramSpec, ProgramTruth, simulate_program
from manylift.simulate.segments import SegmentExperiment, simulate_segment_experiment
from manylift.simulate.single import SingleExperiment, simulate_experiment

__all__ = [
    "MultiArmExperiment",
    "ProgramSpec",
    "ProgramTruth",
    "SegmentExperiment",
    "SingleExperiment",
    "simulate_experiment",
    "simulate_multiarm",
    "simulate_program",
    "simulate_segment_experiment",
]
