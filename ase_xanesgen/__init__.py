"""ase-xanesgen: diffusion generation of amorphous structures guided by XANES, as an ASE plugin."""
