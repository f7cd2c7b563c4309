// Package build minifies the browser library with esbuild: the classic
// script (push.js, defining PushClient) and the ES module (push.mjs)
// from push.src.js. go generate runs it; a test runs it again and fails
// when the files checked in are not what it makes.
package build

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/evanw/esbuild/pkg/api"
)

// Outputs returns the generated files by name, built from the library
// source in dir.
func Outputs(dir string) (map[string][]byte, error) {
	out := map[string][]byte{}
	for name, format := range map[string]api.Format{"push.mjs": api.FormatESModule, "push.js": api.FormatIIFE} {
		opts := api.BuildOptions{
			Bundle:            true,
			Format:            format,
			Target:            api.ES2020,
			MinifyWhitespace:  true,
			MinifyIdentifiers: true,
			MinifySyntax:      true,
			LegalComments:     api.LegalCommentsNone,
			Charset:           api.CharsetUTF8,
			Write:             false,
			Banner:            map[string]string{"js": "/* pushcluster browser library: generated from push.src.js by go generate; do not edit */"},
		}
		if format == api.FormatIIFE {
			// A classic script defines the global PushClient.
			opts.Stdin = &api.StdinOptions{
				Contents:   `import {PushClient} from "./push.src.js"; globalThis.PushClient = PushClient;`,
				ResolveDir: dir, Sourcefile: "push.js", Loader: api.LoaderJS,
			}
		} else {
			opts.EntryPoints = []string{filepath.Join(dir, "push.src.js")}
		}
		res := api.Build(opts)
		if len(res.Errors) > 0 {
			var msgs []string
			for _, m := range res.Errors {
				msgs = append(msgs, m.Text)
			}
			return nil, fmt.Errorf("esbuild %s: %s", name, strings.Join(msgs, "; "))
		}
		if len(res.OutputFiles) != 1 {
			return nil, errors.New("esbuild " + name + ": not one output file")
		}
		out[name] = res.OutputFiles[0].Contents
	}
	return out, nil
}
