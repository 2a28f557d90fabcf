// etcd-grpc-put: the loadgen closed loop over etcd's own gRPC client (clientv3),
// with the same flags, model, percentile definition and JSON as `statekv bench`.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"math"
	"math/rand"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/clientv3"
)

type client struct {
	kv    *clientv3.Client
	rng   *rand.Rand
	value []byte
	seq   uint64
	lat   []int64
	ok    uint64
	errs  uint64
}

func main() {
	endpoints := flag.String("endpoints", "", "comma-separated etcd client URLs")
	clients := flag.Int("clients", 16, "concurrent clients, one gRPC connection each")
	requests := flag.Int64("requests", 20000, "measured puts in total")
	valueSize := flag.Int("value-size", 256, "bytes per value")
	keySpace := flag.Int64("key-space", 1000, "distinct keys")
	seed := flag.Int64("seed", 1, "seed for the key sequence")
	warmup := flag.Float64("warmup", 1, "seconds of unmeasured writes")
	flag.Bool("json", true, "accepted for symmetry with statekv bench")
	flag.Parse()
	eps := strings.Split(*endpoints, ",")
	if *endpoints == "" || *clients < 1 || *requests < 1 || *keySpace < 1 {
		fmt.Fprintln(os.Stderr, "etcd-grpc-put: bad flags")
		os.Exit(2)
	}
	// One connection per client, client c on endpoint c % N, as statekv bench does.
	cs := make([]*client, *clients)
	for c := range cs {
		kv, err := clientv3.New(clientv3.Config{Endpoints: []string{eps[c%len(eps)]},
			DialTimeout: 3 * time.Second})
		if err != nil {
			fmt.Fprintf(os.Stderr, "etcd-grpc-put: client %d: %v\n", c, err)
			os.Exit(2)
		}
		defer kv.Close()
		cl := &client{kv: kv, rng: rand.New(rand.NewSource(*seed ^ int64(c+1)*0x1e3779b97f4a7c15)),
			value: make([]byte, *valueSize)}
		for i := range cl.value {
			cl.value[i] = byte('a' + cl.rng.Intn(26))
		}
		cs[c] = cl
	}
	put := func(c int, cl *client) (time.Duration, error) {
		key := fmt.Sprintf("key:%012d", cl.rng.Int63n(*keySpace))
		cl.seq++
		copy(cl.value, fmt.Sprintf("%x.%x.", c, cl.seq))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		start := time.Now()
		_, err := cl.kv.Put(ctx, key, string(cl.value))
		return time.Since(start), err
	}

	var wg sync.WaitGroup
	warmupEnd := time.Now().Add(time.Duration(*warmup * float64(time.Second)))
	for c, cl := range cs {
		wg.Add(1)
		go func(c int, cl *client) {
			defer wg.Done()
			for time.Now().Before(warmupEnd) {
				put(c, cl)
			}
		}(c, cl)
	}
	wg.Wait()

	var next int64
	var firstErr atomic.Value
	start := time.Now()
	for c, cl := range cs {
		wg.Add(1)
		go func(c int, cl *client) {
			defer wg.Done()
			for atomic.AddInt64(&next, 1) <= *requests {
				d, err := put(c, cl)
				if err != nil {
					cl.errs++
					firstErr.CompareAndSwap(nil, fmt.Sprintf("client %d: %v", c, err))
					continue
				}
				cl.ok++
				cl.lat = append(cl.lat, d.Nanoseconds())
			}
		}(c, cl)
	}
	wg.Wait()
	seconds := time.Since(start).Seconds()

	var all []int64
	var ok, errs uint64
	for _, cl := range cs {
		all = append(all, cl.lat...)
		ok += cl.ok
		errs += cl.errs
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	rank := func(q float64) float64 { // nearest rank, as loadgen::nearest_rank
		if len(all) == 0 {
			return 0
		}
		r := math.Max(1, math.Min(math.Ceil(q*float64(len(all))-1e-9), float64(len(all))))
		return float64(all[int(r)-1]) / 1e6
	}
	first, _ := firstErr.Load().(string)
	out, _ := json.Marshal(map[string]interface{}{
		"target": "etcd-grpc", "clients": *clients, "requests": *requests,
		"value_size": *valueSize, "key_space": *keySpace, "seed": *seed,
		"warmup_seconds": *warmup, "ok": ok, "errors": errs, "seconds": seconds,
		"ops_per_sec": float64(ok) / seconds, "p50_ms": rank(0.5), "p90_ms": rank(0.9),
		"p99_ms": rank(0.99), "p999_ms": rank(0.999), "max_ms": rank(1), "first_error": first,
	})
	fmt.Println(string(out))
	if errs > 0 {
		os.Exit(1)
	}
}
