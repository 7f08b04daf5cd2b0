"""The kernel side: turn IPython events into journal events, fast and never in the way."""
