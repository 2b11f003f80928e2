package config

import (
	"fmt"

	"gopkg.in/yaml.v3"
)

// FromTopology reads the topology a host file gives (its topology:
// section): read from file when it names one, else the inline document
// node; with neither, the demo topology. It is decoded, defaulted and
// validated as Parse does.
func FromTopology(file string, node *yaml.Node) (*Config, error) {
	switch {
	case file != "":
		return Load(file)
	case node == nil:
		return Demo(), nil
	}
	data, err := yaml.Marshal(node)
	if err != nil {
		return nil, fmt.Errorf("config: topology: %w", err)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config: topology: %w", err)
	}
	return c, nil
}
