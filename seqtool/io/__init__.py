"""Reading numbers from flags, files and stdin; writing json/csv; (later) checkpoints."""
