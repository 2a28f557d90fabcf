// porcupine_driver: judges statekv's JSON Lines register histories with
// porcupine (github.com/anishathalye/porcupine), for bench/compare_porcupine.sh.
//
//	porcupine_driver FILE...
//
// Prints one line per file: "FILE valid|invalid SECONDS OPS", where SECONDS is the
// time spent inside porcupine.CheckOperations (parsing excluded), summed over keys.
// The history is split per key (linearizability is compositional) exactly as
// `statekv check linearizable` does. Semantics match statekv's: a `fail` op never
// happened (dropped); an `info` op may take effect at any instant after its
// invoke or never (Return = +inf, unknown output: porcupine may linearize it
// anywhere, including after everything else); a cas is [expected, new].
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/anishathalye/porcupine"
)

type event struct {
	Process int64           `json:"process"`
	Type    string          `json:"type"`
	F       string          `json:"f"`
	Key     string          `json:"key"`
	Value   json.RawMessage `json:"value"`
	Time    int64           `json:"time"`
}

const absent = "\x00absent"

type input struct {
	f               string
	value, expected string
}

type output struct {
	unknown bool
	value   string // read: the value read
}

// The register: state is the value (absent is a sentinel).
var model = porcupine.Model{
	Init: func() interface{} { return absent },
	Step: func(state, in, out interface{}) (bool, interface{}) {
		st := state.(string)
		i := in.(input)
		o := out.(output)
		switch i.f {
		case "read":
			return o.unknown || o.value == st, st
		case "write":
			return true, i.value
		case "delete":
			return true, absent
		case "cas":
			if st == i.expected {
				return true, i.value
			}
			// An info cas that cannot apply here may have taken effect elsewhere or
			// never: only an acknowledged cas needs the expected value.
			return o.unknown, st
		}
		return false, st
	},
	Equal: func(a, b interface{}) bool { return a == b },
}

func str(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return absent
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return string(raw)
	}
	return s
}

func load(path string) (map[string][]porcupine.Operation, int, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	type pending struct {
		e  event
		in input
	}
	inflight := map[int64]pending{}
	byKey := map[string][]porcupine.Operation{}
	ops := 0
	add := func(p pending, out output, ret int64) {
		byKey[p.e.Key] = append(byKey[p.e.Key], porcupine.Operation{
			ClientId: int(p.e.Process), Input: p.in, Call: p.e.Time, Output: out, Return: ret})
		ops++
	}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<26)
	for line := 1; sc.Scan(); line++ {
		if len(sc.Bytes()) == 0 {
			continue
		}
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return nil, 0, fmt.Errorf("line %d: %v", line, err)
		}
		if e.Type == "invoke" {
			in := input{f: e.F}
			switch e.F {
			case "write":
				in.value = str(e.Value)
			case "cas":
				var pair []json.RawMessage
				if err := json.Unmarshal(e.Value, &pair); err != nil || len(pair) != 2 {
					return nil, 0, fmt.Errorf("line %d: cas value is not [expected, new]", line)
				}
				in.expected, in.value = str(pair[0]), str(pair[1])
			}
			inflight[e.Process] = pending{e, in}
			continue
		}
		p, ok := inflight[e.Process]
		if !ok {
			return nil, 0, fmt.Errorf("line %d: completion with nothing in flight", line)
		}
		delete(inflight, e.Process)
		switch e.Type {
		case "ok":
			add(p, output{value: str(e.Value)}, e.Time)
		case "info":
			add(p, output{unknown: true}, math.MaxInt64)
		case "fail": // never happened
		default:
			return nil, 0, fmt.Errorf("line %d: unknown type %q", line, e.Type)
		}
	}
	for _, p := range inflight { // never completed: like info
		add(p, output{unknown: true}, math.MaxInt64)
	}
	return byKey, ops, sc.Err()
}

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: porcupine_driver FILE...")
		os.Exit(2)
	}
	for _, path := range os.Args[1:] {
		byKey, ops, err := load(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s: %v\n", path, err)
			os.Exit(2)
		}
		valid := true
		var spent time.Duration
		for _, h := range byKey {
			start := time.Now()
			ok := porcupine.CheckOperations(model, h)
			spent += time.Since(start)
			if !ok {
				valid = false
				break
			}
		}
		verdict := "valid"
		if !valid {
			verdict = "invalid"
		}
		fmt.Printf("%s %s %.6f %d\n", path, verdict, spent.Seconds(), ops)
	}
}
