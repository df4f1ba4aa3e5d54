package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/stile-id/stile/storage"
)

func (c *cli) printJSON(v any) error {
	enc := json.NewEncoder(c.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printTable prints name/value rows aligned.
func (c *cli) printTable(rows [][2]string) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	return tw.Flush()
}

// printRows prints a table whose first row is the header.
func (c *cli) printRows(rows [][]string) error {
	tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintln(tw, strings.Join(r, "\t"))
	}
	return tw.Flush()
}

// readFull reads until b is full or the input ends.
func readFull(r io.Reader, b []byte) (int, error) {
	n, err := io.ReadFull(r, b)
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return n, nil
	}
	return n, err
}

// flagError turns the store's refusal of a value into an error that names
// the flag it came from, so the operator knows what to fix. The store's
// message starts with the field at fault; fields maps such starts to flags.
// Any other error is returned as it is.
func flagError(err error, fields [][2]string) error {
	if !errors.Is(err, storage.ErrInvalid) {
		return err
	}
	_, detail, ok := strings.Cut(err.Error(), storage.ErrInvalid.Error()+": ")
	if !ok {
		return err
	}
	for _, f := range fields {
		if strings.HasPrefix(detail, f[0]) {
			return fmt.Errorf("%s: %s", f[1], detail)
		}
	}
	return err
}
