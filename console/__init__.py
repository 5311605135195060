"""Terminal output shared by the command and the stages: consoles and progress bars."""
