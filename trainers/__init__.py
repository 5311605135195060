"""Launchers around TRL's SFTTrainer (RSFT) and DPOTrainer (DPO), and the model hand-off."""
