// Command gen writes the minified browser library next to its source:
// go generate ./pkg/api/clientlib.
package main

import (
	"log"
	"os"

	"github.com/pushcluster/pushcluster/pkg/api/clientlib/internal/build"
)

func main() {
	files, err := build.Outputs(".")
	if err != nil {
		log.Fatal(err)
	}
	for name, b := range files {
		if err := os.WriteFile(name, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
}
