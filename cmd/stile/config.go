package main

import (
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"go.yaml.in/yaml/v3"
)

// Where a setting comes from, in precedence order: the command line beats
// the environment (STILE_*), which beats the --config file, which beats the
// default. Every flag with an "env" annotation can be set all three ways,
// so a flag defined with envFlag, durationFlag or rateFlag needs nothing
// more to be settable from the file.
const (
	fromDefault = "default"
	fromFlag    = "flag"
	fromEnv     = "env"
	fromFile    = "file"
	fromDerived = "derived"
)

// source says where one setting's value came from.
type source struct {
	kind string // one of the from… constants
	env  string // fromEnv: the variable
	file string // fromFile: the file's path…
	line int    // …and the key's line
	key  string // fromFile: the key
	note string // fromDefault, fromDerived: how the value was chosen
}

// String is the source as config check's table shows it.
func (s source) String() string {
	switch s.kind {
	case fromEnv:
		return "env " + s.env
	case fromFile:
		return fmt.Sprintf("file %s:%d", s.file, s.line)
	case fromDefault, fromDerived:
		if s.note != "" {
			return s.kind + " (" + s.note + ")"
		}
	}
	return s.kind
}

// from is the source as a problem names it.
func (s source) from() string {
	switch s.kind {
	case fromFlag:
		return "from the command line"
	case fromEnv:
		return "from env " + s.env
	case fromFile:
		return fmt.Sprintf("from %s:%d %s", s.file, s.line, s.key)
	}
	return s.String()
}

// problem is one thing wrong with the configuration, with where the value
// came from.
type problem struct {
	flag string // the setting it is about; "" for the file as a whole
	src  source
	err  error
}

func (p problem) Error() string {
	if p.flag == "" && p.src.kind == fromFile {
		if p.src.line > 0 {
			return fmt.Sprintf("%s:%d: %v", p.src.file, p.src.line, p.err)
		}
		return fmt.Sprintf("%s: %v", p.src.file, p.err)
	}
	return fmt.Sprintf("%v (%s)", p.err, p.src.from())
}

func (p problem) Unwrap() error { return p.err }

// problems is every problem found, reported together: an operator fixes
// them in one go instead of one start at a time.
type problems []problem

func (ps problems) Error() string {
	var b strings.Builder
	if len(ps) == 1 {
		b.WriteString("the configuration has a problem:")
	} else {
		fmt.Fprintf(&b, "the configuration has %d problems:", len(ps))
	}
	for _, p := range ps {
		b.WriteString("\n  " + p.Error())
	}
	return b.String()
}

func (ps problems) Unwrap() []error {
	errs := make([]error, len(ps))
	for i, p := range ps {
		errs[i] = p
	}
	return errs
}

// settings are one command's flags once the command line, the environment
// and the config file have been applied, with each value's source and what
// was wrong on the way.
type settings struct {
	fs       *pflag.FlagSet
	file     string // the --config file, "" if none
	sources  map[string]source
	problems problems
}

func (s *settings) source(name string) source {
	if src, ok := s.sources[name]; ok {
		return src
	}
	return source{kind: fromDefault}
}

// problem records err about the setting name, from wherever it came.
func (s *settings) problem(name string, err error) {
	s.problems = append(s.problems, problem{flag: name, src: s.source(name), err: err})
}

// leadingFlag finds the flag an error is about: stile's messages start
// with it ("--session-idle must be positive…").
var leadingFlag = regexp.MustCompile(`^--([a-z0-9][a-z0-9-]*)`)

// add records every error err joins, each about the flag it names.
func (s *settings) add(err error) {
	if err == nil {
		return
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			s.add(e)
		}
		return
	}
	name := ""
	if m := leadingFlag.FindStringSubmatch(err.Error()); m != nil && s.fs.Lookup(m[1]) != nil {
		name = m[1]
	}
	s.problem(name, err)
}

// err is the problems found, or nil.
func (s *settings) err() error {
	if len(s.problems) == 0 {
		return nil
	}
	return s.problems
}

// configKeys is every setting a config file may hold: the flags with an
// environment fallback, of every command.
func configKeys(root *cobra.Command) map[string]bool {
	keys := map[string]bool{}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if len(f.Annotations["env"]) > 0 && f.Name != "config" {
					keys[f.Name] = true
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	return keys
}

// lineGuard holds back the errors of values given on the command line, so
// they are listed with every other problem rather than alone. cobra stops
// at the first bad flag; a guarded flag's Set records the error and
// succeeds while the command line is parsed.
type lineGuard struct {
	parsing bool
	errs    []problem
}

type guardedValue struct {
	pflag.Value
	name  string
	guard *lineGuard
}

func (v guardedValue) Set(s string) error {
	// Some of pflag's values store a zero before refusing (a duration's
	// does): a refused value leaves the one before.
	var restore func()
	if sv, ok := v.Value.(pflag.SliceValue); ok {
		old := sv.GetSlice()
		restore = func() { _ = sv.Replace(old) }
	} else {
		old := v.Value.String()
		restore = func() { _ = v.Value.Set(old) }
	}
	err := v.Value.Set(s)
	if err != nil {
		restore()
	}
	if err != nil && v.guard.parsing {
		v.guard.errs = append(v.guard.errs, problem{flag: v.name, src: source{kind: fromFlag}, err: fmt.Errorf("--%s %q: %w", v.name, s, err)})
		return nil
	}
	return err
}

// guard wraps every flag with an environment fallback, on every command.
func (g *lineGuard) guard(root *cobra.Command) {
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for _, fs := range []*pflag.FlagSet{c.Flags(), c.PersistentFlags()} {
			fs.VisitAll(func(f *pflag.Flag) {
				if _, done := f.Value.(guardedValue); !done && len(f.Annotations["env"]) > 0 {
					f.Value = guardedValue{Value: f.Value, name: f.Name, guard: g}
				}
			})
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	g.parsing = true
	walk(root)
}

// unguarded is the flag's own value.
func unguarded(v pflag.Value) pflag.Value {
	if g, ok := v.(guardedValue); ok {
		return g.Value
	}
	return v
}

// loadSettings applies the environment and then the config file to the
// flags of cmd that the command line left alone. keys is what a file may
// set (configKeys): a key of another command is ignored here, a key of no
// command is a problem.
func loadSettings(fs *pflag.FlagSet, getenv func(string) string, g *lineGuard, keys map[string]bool) *settings {
	g.parsing = false
	s := &settings{fs: fs, sources: map[string]source{}}
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Changed {
			s.sources[f.Name] = source{kind: fromFlag}
		}
	})
	s.problems = append(s.problems, g.errs...)
	fs.VisitAll(func(f *pflag.Flag) {
		env := f.Annotations["env"]
		if f.Changed || len(env) == 0 {
			return
		}
		v := getenv(env[0])
		if v == "" {
			return
		}
		s.sources[f.Name] = source{kind: fromEnv, env: env[0]}
		if err := fs.Set(f.Name, v); err != nil {
			s.problem(f.Name, fmt.Errorf("--%s %q: %w", f.Name, v, cause(err)))
		}
	})
	if f := fs.Lookup("config"); f != nil && f.Value.String() != "" {
		s.file = f.Value.String()
		s.applyFile(keys)
	}
	return s
}

// cause is the reason pflag gives inside its "invalid argument" wrapper.
func cause(err error) error {
	if u := errors.Unwrap(err); u != nil {
		return u
	}
	return err
}

// applyFile reads the YAML file: a mapping from flag names to values.
func (s *settings) applyFile(keys map[string]bool) {
	whole := func(line int, err error) {
		s.problems = append(s.problems, problem{src: source{kind: fromFile, file: s.file, line: line}, err: err})
	}
	b, err := os.ReadFile(s.file)
	if err != nil {
		s.problem("config", fmt.Errorf("--config: %w", err))
		return
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		whole(0, err)
		return
	}
	if len(doc.Content) == 0 {
		return // an empty file sets nothing
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		whole(top.Line, errors.New("want a mapping of setting names to values, e.g. issuer: https://id.example.com"))
		return
	}
	seen := map[string]int{}
	for i := 0; i+1 < len(top.Content); i += 2 {
		k, v := top.Content[i], top.Content[i+1]
		key := k.Value
		src := source{kind: fromFile, file: s.file, line: k.Line, key: key}
		bad := func(err error) { s.problems = append(s.problems, problem{flag: key, src: src, err: err}) }
		switch {
		case key == "config":
			whole(k.Line, errors.New(`"config" cannot be set from the config file itself`))
			continue
		case !keys[key]:
			whole(k.Line, fmt.Errorf("unknown setting %q: the keys are the flag names of stile serve, without the dashes (see stile serve --help)", key))
			continue
		case seen[key] > 0:
			whole(k.Line, fmt.Errorf("%q is set twice (first on line %d)", key, seen[key]))
			continue
		}
		seen[key] = k.Line
		f := s.fs.Lookup(key)
		if f == nil || len(f.Annotations["env"]) == 0 {
			continue // another command's setting
		}
		if k := s.source(key).kind; k == fromFlag || k == fromEnv {
			continue // the command line or the environment wins
		}
		s.sources[key] = src
		if err := setFromYAML(s.fs, f, v); err != nil {
			bad(fmt.Errorf("--%s %w", key, err))
		}
	}
}

// setFromYAML sets a flag from a YAML value: a scalar as the flag would
// take it on the command line; a list for a repeatable flag, or joined with
// commas for a flag that takes a comma-separated list.
func setFromYAML(fs *pflag.FlagSet, f *pflag.Flag, v *yaml.Node) error {
	if v.Kind == yaml.AliasNode {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.ScalarNode:
		val := v.Value
		if v.Tag == "!!null" {
			val = ""
		}
		if err := fs.Set(f.Name, val); err != nil {
			return fmt.Errorf("%q: %w", val, cause(err))
		}
		return nil
	case yaml.SequenceNode:
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it.Kind != yaml.ScalarNode {
				return fmt.Errorf("a list of plain values is wanted, not a nested %s", kindName(it.Kind))
			}
			items = append(items, it.Value)
		}
		if sv, ok := unguarded(f.Value).(pflag.SliceValue); ok {
			if err := sv.Replace(items); err != nil {
				return fmt.Errorf("%q: %w", items, err)
			}
			f.Changed = true
			return nil
		}
		if f.Value.Type() != "string" {
			return fmt.Errorf("wants one %s value, not a list", f.Value.Type())
		}
		val := strings.Join(items, ",")
		if err := fs.Set(f.Name, val); err != nil {
			return fmt.Errorf("%q: %w", val, cause(err))
		}
		return nil
	}
	return fmt.Errorf("wants a value, not a %s", kindName(v.Kind))
}

func kindName(k yaml.Kind) string {
	return map[yaml.Kind]string{yaml.MappingNode: "mapping", yaml.SequenceNode: "list", yaml.DocumentNode: "document"}[k]
}

// collects marks the commands that list the configuration's problems
// themselves, together with their own checks (serve, config check); every
// other command stops at once on a bad setting.
var collects = map[string]string{"config": "collect"}

func collectsProblems(cmd *cobra.Command) bool { return cmd.Annotations["config"] == "collect" }

// settingNames is every flag of fs config check shows, sorted.
func settingNames(fs *pflag.FlagSet) []string {
	var names []string
	fs.VisitAll(func(f *pflag.Flag) {
		if f.Name != "help" && f.Name != "json" {
			names = append(names, f.Name)
		}
	})
	slices.Sort(names)
	return names
}
