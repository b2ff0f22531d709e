"""The synthetic STARSS23-like dataset generator (spec/data.md section 4)."""
