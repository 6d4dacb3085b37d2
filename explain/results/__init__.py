"""The result types and their files: Explanation and Results, the results file, sharded folders, content hashes."""
