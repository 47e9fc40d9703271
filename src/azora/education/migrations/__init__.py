"""Migration history of the azora_education database."""
