"""lamina.utils: helpers with torch.utils' names."""
