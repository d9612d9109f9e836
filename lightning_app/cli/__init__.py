"""The command line: one LightningCLI for every command, its config files, and its errors named as flags."""
