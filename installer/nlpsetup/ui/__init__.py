"""What people read: progress on the terminal and the rendered text of each result."""
