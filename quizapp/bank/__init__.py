"""Reading question banks (folders of YAML files) into domain objects, with located errors."""
