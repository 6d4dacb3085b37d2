"""How rows reach the model: batching, devices, fast copies and scoped hooks (below the adapters)."""
