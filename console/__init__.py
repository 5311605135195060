"""Terminal output shared by the stages: progress bars."""
