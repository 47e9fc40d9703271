"""Migration history of the azora_family database."""
