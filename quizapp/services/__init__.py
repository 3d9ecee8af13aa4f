"""Use cases: each combines domain rules with persistence and owns its transaction."""
