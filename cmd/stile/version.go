package main

import (
	"fmt"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Stamped by `make build` and `make install` (-ldflags -X main.version=…).
// Left empty, they come from what the Go toolchain recorded (the module
// version of a `go install …@version`, the VCS revision of a checkout).
var (
	version string
	commit  string
	date    string
)

// buildInfo is what `stile version` prints.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit,omitempty"`
	Date    string `json:"date,omitempty"`
	Go      string `json:"go"`
}

func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Date: date, Go: runtime.Version()}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return b.orDev()
	}
	if b.Version == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
		b.Version = info.Main.Version
	}
	dirty := false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			if b.Commit == "" {
				b.Commit = s.Value[:min(12, len(s.Value))]
			}
		case "vcs.time":
			if b.Date == "" {
				b.Date = s.Value
			}
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && commit == "" && b.Commit != "" {
		b.Commit += "-dirty"
	}
	return b.orDev()
}

func (b buildInfo) orDev() buildInfo {
	if b.Version == "" {
		b.Version = "dev"
	}
	return b
}

func (c *cli) versionCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and build date of this binary",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			b := currentBuild()
			if c.jsonOut {
				return c.printJSON(b)
			}
			fmt.Fprintf(c.stdout, "stile %s\n", b.Version)
			if b.Commit != "" {
				fmt.Fprintf(c.stdout, "  commit  %s\n", b.Commit)
			}
			if b.Date != "" {
				fmt.Fprintf(c.stdout, "  built   %s\n", b.Date)
			}
			fmt.Fprintf(c.stdout, "  go      %s\n", b.Go)
			return nil
		},
	}
	c.addJSON(cmd)
	return cmd
}
