"""Command line of explain: `explain run | methods | inspect | report | demo`."""
