"""Migration history of the azora_mint database."""
