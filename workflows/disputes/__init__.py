"""The dispute workflow, its activities, types, evidence and client."""
