from waterdrop.contracts.wording import *  # noqa: F403 - the former name; the core imports it
