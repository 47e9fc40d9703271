"""Family service: the eleven AI family members and their conversations (``azora_family``)."""
