"""The analysis core, split along its seams; transforms import from here.

Read in dependency order:

- `torchapi`: what the analysis knows about torch, in one table.
- `project`: the project model (modules, classes, functions, call sites) and
  the types the index infers; `collect` fills it from `ast` trees.
- `configs`: constructions in configuration files (hyperpyyaml, Hydra).
- `graphs`: strongly connected components, for call cycles.
- `screen`: what a target can hold, from its syntax alone (lets a run skip
  the project).
- `index`: name resolution, type inference (annotations, constructors, call
  sites, configuration files) and call resolution over the whole project.
- `gradfacts`: which values may be tensors that require grad.
- `gradstates`: grad modes along call paths, per strongly connected component.
- `regions`: a region that would run under inference mode, and its findings.
- `effects`: what a region does to persistent state.
- `valueflow`: where the region's tensors go and what they meet there.
- `sharing`: independent judgements shared with a forked copy of the process.
"""

from .collect import BodyWalks
from .gradstates import GradStates
from .index import ProjectIndex, build_index
from .project import CallSite, ClassInfo, ClassRef, Container, External, FunctionInfo, Instance, ModuleInfo, own_nodes
from .regions import Hazard, HazardKind, Region
from .sharing import judge_all
from .torchapi import GRAD_OFF_MODES, NO_GRAD, SET_GRAD_ENABLED, TORCH_PREFIXES, GradMode
from .valueflow import FlowAnalyzer

__all__ = [
    "GRAD_OFF_MODES", "NO_GRAD", "SET_GRAD_ENABLED", "TORCH_PREFIXES", "BodyWalks", "CallSite", "ClassInfo", "ClassRef",
    "Container", "External", "FlowAnalyzer", "FunctionInfo", "GradMode", "GradStates", "Hazard", "HazardKind",
    "Instance", "ModuleInfo", "ProjectIndex", "Region", "build_index", "judge_all", "own_nodes",
]
