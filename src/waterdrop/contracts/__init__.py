"""Contracts: validation rules with WaterDrop's wording (see ``messages``)."""
