"""pooled layer of manylift (see DESIGN.md section 3)."""
