package main

import "fmt"

// target is one of issue 10's item-5 targets, computed from a run. Every
// figure is a ratio within the run (or a size, or the ready time), never an
// absolute speed: on a shared machine only ratios travel.
type target struct {
	Run    string  `json:"run"`
	Name   string  `json:"name"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	AtMost bool    `json:"at_most"` // value ≤ limit passes; else value ≥ limit does
	Unit   string  `json:"unit,omitempty"`
	Pass   bool    `json:"pass"`
	Note   string  `json:"note,omitempty"` // why there is no figure
}

func (t target) line() string {
	op := "≥"
	if t.AtMost {
		op = "≤"
	}
	if t.Note != "" {
		return fmt.Sprintf("n/a   [%s] %s: %s", t.Run, t.Name, t.Note)
	}
	verdict := "MISS"
	if t.Pass {
		verdict = "PASS"
	}
	return fmt.Sprintf("%s  [%s] %s: %.2f%s (target %s %.2f%s)", verdict, t.Run, t.Name, t.Value, t.Unit, op, t.Limit, t.Unit)
}

func (r *report) scenario(name string) *summary {
	for i := range r.Scenarios {
		if r.Scenarios[i].Scenario == name {
			return &r.Scenarios[i]
		}
	}
	return nil
}

func (r *report) step(name string, c int) *stepResult {
	for i := range r.Steps {
		if r.Steps[i].Scenario == name && r.Steps[i].Concurrency == c {
			return &r.Steps[i]
		}
	}
	return nil
}

// check appends a target; ok false (with note) when the run has no figure.
func (r *report) check(name string, value, limit float64, atMost bool, unit, note string) {
	t := target{Run: r.Label, Name: name, Value: value, Limit: limit, AtMost: atMost, Unit: unit, Note: note}
	if note == "" {
		t.Pass = value >= limit
		if atMost {
			t.Pass = value <= limit
		}
	}
	r.Targets = append(r.Targets, t)
}

// evaluate computes the targets that apply to this run's database and
// algorithm.
func (r *report) evaluate() {
	r.Targets = nil
	if r.Alg == "RS256" {
		for _, name := range []string{"refresh", "silent_sso"} {
			v, note := 0.0, "no server CPU (not local?)"
			if s := r.scenario(name); s != nil && s.Overhead != nil {
				v, note = *s.Overhead, ""
			}
			r.check(name+" overhead ratio (RS256)", v, 1.25, true, "", note)
		}
	}
	if r.Alg == "ES256" && r.Database == "sqlite" {
		v, note := 0.0, "no server CPU (not local?)"
		if s := r.scenario("refresh"); s != nil && s.CPUPerReq != nil && r.Primitives.SignCPUms > 0 {
			v, note = *s.CPUPerReq/r.Primitives.SignCPUms, ""
		}
		r.check("refresh server CPU ÷ one ES256 signature (SQLite)", v, 5, true, "×", note)
	}
	r.tailTarget("refresh", 32, 5)
	if cc, disc := r.best("client_credentials"), r.best("discovery"); disc > 0 {
		r.check("client_credentials (opaque) ÷ discovery throughput", cc/disc, 0.5, false, "", "")
	}
	if s := r.step("signin", 8); s != nil && r.Primitives.Argon2Floor > 0 {
		r.check("two-step sign-in at c=8 ÷ argon2id floor", s.PerSecond/r.Primitives.Argon2Floor, 0.9, false, "", "")
	}
	r.tailTarget("signin", 8, 4)
	r.serverTargets()
}

// tailTarget: p99 ≤ limit × p50 at concurrency c.
func (r *report) tailTarget(name string, c int, limit float64) {
	if s := r.step(name, c); s != nil && s.P50ms > 0 {
		r.check(fmt.Sprintf("%s p99 ÷ p50 at c=%d", name, c), s.P99ms/s.P50ms, limit, true, "×", "")
	}
}

func (r *report) serverTargets() {
	s := r.Server
	if s == nil {
		return
	}
	r.check("idle RSS after start", float64(s.IdleRSS)/(1<<20), 25, true, " MiB", "")
	r.check("RSS after the whole run (settled)", float64(s.RSSSettled)/(1<<20), 60, true, " MiB", "")
	if r.Database == "sqlite" {
		r.check("ready after start (SQLite)", s.ReadyMs, 300, true, " ms", "")
	}
}
