"""Migration history of the azora_notifications database."""
