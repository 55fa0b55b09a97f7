// Command kmsmodelgen writes kms/model/model_gen.go from
// kms/model/service-2.json.gz. Run it through `go generate ./kms/model`,
// which runs it in kms/model.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/openhsm/openhsm/kms/model/internal/gen"
)

func main() {
	in := flag.String("model", "service-2.json.gz", "the gzipped AWS KMS model")
	out := flag.String("out", "model_gen.go", "the Go file to write")
	flag.Parse()
	gz, err := os.ReadFile(*in)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kmsmodelgen:", err)
		os.Exit(1)
	}
	src, err := gen.Generate(gz)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kmsmodelgen:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(*out, src, 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "kmsmodelgen:", err)
		os.Exit(1)
	}
}
