"""Optional components (the TaskManager)."""
