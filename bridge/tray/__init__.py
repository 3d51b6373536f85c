"""The tray app: the bridge in the background with a status icon and a dashboard window."""
