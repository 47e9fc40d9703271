"""Migration history of the azora_forge database."""
