"""The run loop: inputs in, methods called per input, results and progress out (above methods and loading)."""
