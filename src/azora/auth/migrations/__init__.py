"""Migration history of the azora_auth database."""
