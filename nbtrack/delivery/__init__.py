"""Delivery: drain journals into the sinks, from a per-project process or a kernel thread."""
