"""From a checkpoint (a folder, a hub id in the local cache, a model in memory) to a model adapter."""
