"""Migration history of the azora_sapiens database."""
