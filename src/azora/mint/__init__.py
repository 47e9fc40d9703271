"""Mint service: wallets, the double-entry ledger, staking, mining and UBI (``azora_mint``)."""
