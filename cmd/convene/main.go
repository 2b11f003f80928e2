// Command convene is the Convene unified-communications control plane.
package main

import (
	"os"

	"github.com/convene/convene/internal/cli"
)

func main() { os.Exit(cli.Main(os.Args[1:])) }
