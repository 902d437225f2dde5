"""One module per dashboard, each with a `board()` that returns its JSON model."""
