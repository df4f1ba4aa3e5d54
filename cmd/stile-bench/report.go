package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"
)

// serverInfo is what the driver learnt about a server it started itself.
type serverInfo struct {
	PID          int     `json:"pid"`
	FirstReadyMs float64 `json:"first_ready_ms"`    // fresh database: migrations and the first signing key
	ReadyMs      float64 `json:"ready_ms"`          // a restart on the same database: an operator's start
	IdleRSS      int64   `json:"idle_rss_bytes"`    // right after that restart was ready
	RSSAfter     int64   `json:"rss_after_bytes"`   // right after the last step
	HWMAfter     int64   `json:"hwm_after_bytes"`   // the peak of the whole run
	RSSSettled   int64   `json:"rss_settled_bytes"` // after settleAfterRun of quiet: what a server keeps
}

// summary is one scenario over all its steps.
type summary struct {
	Scenario  string   `json:"scenario"`
	Requests  int      `json:"requests"`
	Errors    int      `json:"errors"`
	CPUPerReq *float64 `json:"server_cpu_ms_per_req,omitempty"`
	Cost      cost     `json:"crypto"`
	CryptoMs  float64  `json:"crypto_cpu_ms"` // what that cryptography costs, from the primitives
	Overhead  *float64 `json:"overhead,omitempty"`
}

// report is one run: one server, one database, one algorithm.
type report struct {
	Label      string       `json:"label"`
	Issuer     string       `json:"issuer"`
	Database   string       `json:"database"` // sqlite or postgres
	Alg        string       `json:"alg"`      // from the ID token's header
	Started    time.Time    `json:"started"`
	Primitives primitives   `json:"primitives"`
	Server     *serverInfo  `json:"server,omitempty"`
	Steps      []stepResult `json:"steps"`
	Scenarios  []summary    `json:"scenarios"`
	Targets    []target     `json:"targets"`
}

// cryptoMs is the CPU the cryptography of one request costs.
func (p primitives) cryptoMs(c cost) float64 {
	return float64(c.Signatures)*p.SignCPUms + float64(c.Hashes)*p.Argon2CPUms
}

// overhead is server CPU per request ÷ the CPU of the cryptography it must
// do. Where a request needs none (discovery, JWKS, an opaque token,
// userinfo, introspection) there is no ratio: the report gives the CPU per
// request instead.
func overhead(cpuPerReq *float64, cryptoMs float64) *float64 {
	if cpuPerReq == nil || cryptoMs <= 0 {
		return nil
	}
	r := *cpuPerReq / cryptoMs
	return &r
}

// summarise adds each scenario's totals over its steps: the CPU of all its
// requests over their number, so short steps weigh what they are worth.
func (r *report) summarise() {
	r.Scenarios = nil
	index := map[string]int{}
	cpu := map[string]float64{}
	measured := map[string]bool{}
	for _, s := range r.Steps {
		i, ok := index[s.Scenario]
		if !ok {
			i = len(r.Scenarios)
			index[s.Scenario] = i
			r.Scenarios = append(r.Scenarios, summary{Scenario: s.Scenario, Cost: s.Cost})
			measured[s.Scenario] = true
		}
		sum := &r.Scenarios[i]
		sum.Requests += s.Requests
		sum.Errors += s.Errors
		cpu[s.Scenario] += s.ServerCPU
		measured[s.Scenario] = measured[s.Scenario] && s.CPUPerReq != nil
	}
	for i := range r.Scenarios {
		sum := &r.Scenarios[i]
		sum.CryptoMs = r.Primitives.cryptoMs(sum.Cost)
		if measured[sum.Scenario] && sum.Requests > 0 {
			per := cpu[sum.Scenario] / float64(sum.Requests)
			sum.CPUPerReq = &per
		}
		sum.Overhead = overhead(sum.CPUPerReq, sum.CryptoMs)
	}
}

func optional(v *float64, format string) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf(format, *v)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

// printTable writes the report for people.
func (r *report) printTable(w io.Writer) {
	p := r.Primitives
	fmt.Fprintf(w, "\n== %s — %s, %s on %s\n", r.Label, r.Database, r.Alg, r.Issuer)
	fmt.Fprintf(w, "primitives (CPU per op, this process): %s %.3f ms", p.Alg, p.SignCPUms)
	if p.KeyBits > 0 {
		fmt.Fprintf(w, " (%d-bit)", p.KeyBits)
	}
	fmt.Fprintf(w, "; argon2id %s %.1f ms → floor %.1f sign-ins/s per core\n", p.Argon2, p.Argon2CPUms, p.Argon2Floor)
	if s := r.Server; s != nil {
		fmt.Fprintf(w, "server pid %d: ready %.0f ms after a restart (%.0f ms on the fresh database); RSS idle %s, after the run %s (peak %s), %s after %s of quiet\n",
			s.PID, s.ReadyMs, s.FirstReadyMs, mib(s.IdleRSS), mib(s.RSSAfter), mib(s.HWMAfter), mib(s.RSSSettled), settleAfterRun)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tc\treq/s\tp50 ms\tp99 ms\terrors\tsrv CPU ms/req\tcrypto ms/req\toverhead\t")
	for _, s := range r.Steps {
		c := r.Primitives.cryptoMs(s.Cost)
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t%.2f\t%d\t%s\t%.3f\t%s\t\n", s.Scenario, s.Concurrency, s.PerSecond, s.P50ms, s.P99ms,
			s.Errors, optional(s.CPUPerReq, "%.3f"), c, optional(overhead(s.CPUPerReq, c), "%.2f"))
	}
	tw.Flush()
	fmt.Fprintln(w, "per scenario, all concurrencies (overhead = server CPU per request ÷ its signatures and hashes):")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\trequests\terrors\tsignatures\targon2id\tsrv CPU ms/req\toverhead\t")
	for _, s := range r.Scenarios {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%s\t%s\t\n", s.Scenario, s.Requests, s.Errors, s.Cost.Signatures, s.Cost.Hashes,
			optional(s.CPUPerReq, "%.3f"), optional(s.Overhead, "%.2f"))
	}
	tw.Flush()
	for _, t := range r.Targets {
		fmt.Fprintln(w, t.line())
	}
	for _, s := range r.Steps {
		if s.FirstError != "" {
			fmt.Fprintf(w, "first error of %s c=%d: %s\n", s.Scenario, s.Concurrency, s.FirstError)
		}
	}
}

func (r *report) writeJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("-json: %w", err)
	}
	return nil
}

func readReport(path string) (*report, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var r report
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &r, nil
}

// printSummary writes several runs side by side: per scenario its
// overhead (or CPU per request where there is no ratio) and its best
// throughput, then every run's targets.
func printSummary(w io.Writer, runs []*report) {
	fmt.Fprintln(w, "\n== summary: overhead ratio (or server CPU ms/req where a request signs and hashes nothing) | best req/s over the concurrencies")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	head := []string{"scenario"}
	for _, r := range runs {
		head = append(head, r.Label)
	}
	fmt.Fprintln(tw, strings.Join(head, "\t")+"\t")
	for _, name := range scenarioOrder(runs) {
		row := []string{name}
		for _, r := range runs {
			row = append(row, r.cell(name))
		}
		fmt.Fprintln(tw, strings.Join(row, "\t")+"\t")
	}
	tw.Flush()
	for _, r := range runs {
		for _, t := range r.Targets {
			fmt.Fprintln(w, t.line())
		}
	}
}

func scenarioOrder(runs []*report) []string {
	var names []string
	seen := map[string]bool{}
	for _, r := range runs {
		for _, s := range r.Scenarios {
			if !seen[s.Scenario] {
				seen[s.Scenario] = true
				names = append(names, s.Scenario)
			}
		}
	}
	return names
}

func (r *report) cell(name string) string {
	for _, s := range r.Scenarios {
		if s.Scenario != name {
			continue
		}
		v := "-"
		if s.Overhead != nil {
			v = fmt.Sprintf("×%.2f", *s.Overhead)
		} else if s.CPUPerReq != nil {
			v = fmt.Sprintf("%.3f ms", *s.CPUPerReq)
		}
		return fmt.Sprintf("%s | %.0f/s", v, r.best(name))
	}
	return "-"
}

// best is a scenario's highest throughput over its concurrencies.
func (r *report) best(name string) float64 {
	b := 0.0
	for _, s := range r.Steps {
		if s.Scenario == name {
			b = max(b, s.PerSecond)
		}
	}
	return b
}
