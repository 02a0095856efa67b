"""The commands: one module per `distill` command, each with a `run` that finds the artefacts it needs in the
workspace, checks them, and calls one step of the library (which knows nothing of the workspace)."""
