"""Migration history of the azora_nexus database."""
