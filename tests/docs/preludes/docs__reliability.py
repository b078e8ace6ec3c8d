# docs/reliability.md: its example configures a producer for a 3-broker cluster (only
# configured, never used here).
from waterdrop import Producer
