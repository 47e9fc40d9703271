"""Migration history of the azora_health database."""
